package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
)

// chinaTime is assumed for EXIF local times without an offset tag: the
// phones of a Chinese county's inspectors are set to China Standard Time.
var chinaTime = time.FixedZone("CST", 8*3600)

// ParseExif extracts the GPS position and the capture time from an EXIF
// block (a TIFF structure, optionally preceded by "Exif\0\0"). The GPS
// timestamp (UTC) is preferred for the time; otherwise DateTimeOriginal
// with OffsetTimeOriginal, or China Standard Time when no offset is given.
// It never panics: go-exif reports some malformed input by panicking, which
// is recovered here.
func ParseExif(raw []byte) (out Exif, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = Exif{}, fmt.Errorf("malformed EXIF: %v", r)
		}
	}()
	raw = bytes.TrimPrefix(raw, []byte("Exif\x00\x00"))
	if i := tiffStart(raw); i > 0 {
		raw = raw[i:]
	} else if i < 0 {
		return Exif{}, fmt.Errorf("no TIFF header in the EXIF block")
	}
	if err := checkTIFF(raw); err != nil {
		return Exif{}, err
	}
	im, ti, err := exifTables()
	if err != nil {
		return Exif{}, err
	}
	_, index, err := exif.Collect(im, ti, raw)
	if err != nil {
		return Exif{}, fmt.Errorf("malformed EXIF: %w", err)
	}
	root := index.RootIfd
	if root == nil {
		return Exif{}, nil
	}
	if gpsIfd, err := root.ChildWithIfdPath(exifcommon.IfdGpsInfoStandardIfdIdentity); err == nil && gpsIfd != nil {
		if gi, err := gpsIfd.GpsInfo(); err == nil && gi != nil {
			lat, lon := gi.Latitude.Decimal(), gi.Longitude.Decimal()
			if validLatLon(lat, lon) {
				out.Lat, out.Lon = &lat, &lon
			}
			if !gi.Timestamp.IsZero() && gi.Timestamp.Year() > 1990 {
				t := gi.Timestamp.UTC()
				out.Time = &t
			}
		}
	}
	if out.Time == nil {
		if exifIfd, err := root.ChildWithIfdPath(exifcommon.IfdExifStandardIfdIdentity); err == nil && exifIfd != nil {
			if t, ok := captureTime(exifIfd); ok {
				out.Time = &t
			}
		}
	}
	return out, nil
}

// exifTables returns go-exif's IFD mapping and tag index, built once:
// building them parses go-exif's YAML tag table. The mapping is only read
// after construction and the tag index locks itself, so both are shared.
func exifTables() (*exifcommon.IfdMapping, *exif.TagIndex, error) {
	t, err := loadExifTables()
	return t.im, t.ti, err
}

type exifTableSet struct {
	im *exifcommon.IfdMapping
	ti *exif.TagIndex
}

var loadExifTables = sync.OnceValues(func() (exifTableSet, error) {
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		return exifTableSet{}, err
	}
	ti := exif.NewTagIndex()
	if err := exif.LoadStandardTags(ti); err != nil {
		return exifTableSet{}, err
	}
	return exifTableSet{im: im, ti: ti}, nil
})

func validLatLon(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && !math.IsInf(lat, 0) && !math.IsInf(lon, 0) &&
		lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && (lat != 0 || lon != 0)
}

// tiffStart returns where the TIFF header starts within the first bytes
// (0 when at the start), or -1.
func tiffStart(b []byte) int {
	for i := 0; i+4 <= len(b) && i < 64; i++ {
		if bytes.Equal(b[i:i+4], []byte("II*\x00")) || bytes.Equal(b[i:i+4], []byte("MM\x00*")) {
			return i
		}
	}
	return -1
}

func tagString(ifd *exif.Ifd, name string) (string, bool) {
	tags, err := ifd.FindTagWithName(name)
	if err != nil || len(tags) == 0 {
		return "", false
	}
	v, err := tags[0].Value()
	if err != nil {
		return "", false
	}
	s, ok := v.(string)
	return strings.TrimRight(strings.TrimSpace(s), "\x00"), ok
}

func captureTime(ifd *exif.Ifd) (time.Time, bool) {
	s, ok := tagString(ifd, "DateTimeOriginal")
	if !ok {
		return time.Time{}, false
	}
	loc := chinaTime
	if off, ok := tagString(ifd, "OffsetTimeOriginal"); ok {
		if t, err := time.Parse("-07:00", off); err == nil {
			_, secs := t.Zone()
			loc = time.FixedZone(off, secs)
		}
	}
	t, err := time.ParseInLocation("2006:01:02 15:04:05", s, loc)
	if err != nil || t.Year() < 1990 {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// checkTIFF walks the IFDs of a TIFF block before go-exif sees it and
// refuses any entry whose count or value offset reaches beyond the block,
// IFD loops and absurd entry counts: go-exif trusts count fields and would
// otherwise try to read gigabytes for a four-byte lie.
func checkTIFF(b []byte) error {
	if len(b) < 8 {
		return errors.New("EXIF block is too short")
	}
	var bo binary.ByteOrder = binary.BigEndian
	if b[0] == 'I' {
		bo = binary.LittleEndian
	}
	size := uint64(len(b))
	seen := map[uint32]bool{}
	var walk func(off uint32, depth int) error
	walk = func(off uint32, depth int) error {
		if depth > 4 || seen[off] || len(seen) > 16 {
			return errors.New("EXIF directories loop or nest too deep")
		}
		seen[off] = true
		if uint64(off)+2 > size {
			return errors.New("EXIF directory lies outside the block")
		}
		n := uint64(bo.Uint16(b[off:]))
		if n > 512 || uint64(off)+2+12*n+4 > size {
			return errors.New("EXIF directory is larger than the block")
		}
		for i := uint64(0); i < n; i++ {
			e := b[uint64(off)+2+12*i:]
			tag, typ, count, value := bo.Uint16(e), bo.Uint16(e[2:]), uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
			unit := uint64(1)
			switch typ {
			case 3, 8:
				unit = 2
			case 4, 9, 11, 13:
				unit = 4
			case 5, 10, 12:
				unit = 8
			}
			total := count * unit
			if total > size || (total > 4 && value+total > size) {
				return errors.New("EXIF entry is larger than the block")
			}
			switch tag {
			case 0x8769, 0x8825, 0xA005: // Exif, GPS and interoperability directories
				if err := walk(uint32(value), depth+1); err != nil {
					return err
				}
			}
		}
		// go-exif follows every next-directory link: a link back to an
		// earlier directory would loop it forever.
		if next := bo.Uint32(b[uint64(off)+2+12*n:]); next != 0 {
			return walk(next, depth+1)
		}
		return nil
	}
	return walk(bo.Uint32(b[4:8]), 0)
}
