package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
)

// ExifBlock builds a TIFF EXIF block with a GPS position and/or a local
// capture time (DateTimeOriginal, no offset tag).
func exifBlock(t testing.TB, lat, lon float64, local string) []byte {
	t.Helper()
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		t.Fatal(err)
	}
	ti := exif.NewTagIndex()
	ib := exif.NewIfdBuilder(im, ti, exifcommon.IfdStandardIfdIdentity, binary.BigEndian)
	if local != "" {
		eib, err := exif.GetOrCreateIbFromRootIb(ib, "IFD/Exif")
		if err != nil {
			t.Fatal(err)
		}
		if err := eib.SetStandardWithName("DateTimeOriginal", local); err != nil {
			t.Fatal(err)
		}
	}
	if !math.IsNaN(lat) {
		gib, err := exif.GetOrCreateIbFromRootIb(ib, "IFD/GPSInfo")
		if err != nil {
			t.Fatal(err)
		}
		dms := func(v float64) []exifcommon.Rational {
			v = math.Abs(v)
			d := math.Floor(v)
			m := math.Floor((v - d) * 60)
			s := (v - d - m/60) * 3600
			return []exifcommon.Rational{{Numerator: uint32(d), Denominator: 1}, {Numerator: uint32(m), Denominator: 1},
				{Numerator: uint32(math.Round(s * 10000)), Denominator: 10000}}
		}
		for name, v := range map[string]any{
			"GPSVersionID": []byte{2, 2, 0, 0}, "GPSLatitudeRef": "N", "GPSLatitude": dms(lat),
			"GPSLongitudeRef": "E", "GPSLongitude": dms(lon),
		} {
			if err := gib.SetStandardWithName(name, v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	b, err := exif.NewIfdByteEncoder().EncodeToExif(ib)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plainJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// JPEGWithExif inserts an APP1 Exif segment after SOI.
func jpegWithExif(t testing.TB, w, h int, tiff []byte) []byte {
	j := plainJPEG(t, w, h)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out = append(out, seg...)
	return append(out, j[2:]...)
}

func plainPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.Gray{Y: 200})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return append(b, 0, 0, 0, 0) // CRC is not checked by Inspect
}

// pngWithChunk inserts a chunk after IHDR.
func pngWithChunk(p []byte, chunk []byte) []byte {
	at := 8 + 8 + 13 + 4
	out := append([]byte{}, p[:at]...)
	out = append(out, chunk...)
	return append(out, p[at:]...)
}

func riffChunk(typ string, data []byte) []byte {
	b := append([]byte(typ), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func webp(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

func vp8l(w, h int) []byte {
	bits := uint32(w-1) | uint32(h-1)<<14
	return riffChunk("VP8L", append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...))
}

func vp8x(w, h int) []byte {
	p := []byte{0x08, 0, 0, 0, byte(w - 1), byte((w - 1) >> 8), byte((w - 1) >> 16), byte(h - 1), byte((h - 1) >> 8), byte((h - 1) >> 16)}
	return riffChunk("VP8X", p)
}

func bmff(typ string, payload ...[]byte) []byte {
	var body []byte
	for _, p := range payload {
		body = append(body, p...)
	}
	return append(append(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), typ...), body...)
}

// heic builds a minimal HEIC: ftyp, meta (iinf with an Exif item, iloc
// pointing into mdat, ispe boxes) and mdat holding the Exif item.
func heic(w, h int, tiff []byte) []byte {
	ftyp := bmff("ftyp", []byte("heic"), []byte{0, 0, 0, 0}, []byte("mif1heic"))
	infe := bmff("infe", []byte{2, 0, 0, 0}, []byte{0, 2}, []byte{0, 0}, []byte("Exif"), []byte{0})
	iinf := bmff("iinf", []byte{0, 0, 0, 0}, []byte{0, 1}, infe)
	ispe := func(w, h int) []byte {
		return bmff("ispe", []byte{0, 0, 0, 0}, binary.BigEndian.AppendUint32(nil, uint32(w)), binary.BigEndian.AppendUint32(nil, uint32(h)))
	}
	iprp := bmff("iprp", bmff("ipco", ispe(512, 512), ispe(w, h)))
	item := append([]byte{0, 0, 0, 6}, append([]byte("Exif\x00\x00"), tiff...)...)
	// iloc v0: offset_size 4, length_size 4, base_offset_size 0; one item, one extent.
	ilocLen := 8 + 4 + 2 + 2 + 2 + 2 + 2 + 4 + 4
	build := func(mdatOff int) []byte {
		iloc := bmff("iloc", []byte{0, 0, 0, 0, 0x44, 0x00}, []byte{0, 1}, []byte{0, 2}, []byte{0, 0}, []byte{0, 1},
			binary.BigEndian.AppendUint32(nil, uint32(mdatOff+8)), binary.BigEndian.AppendUint32(nil, uint32(len(item))))
		meta := bmff("meta", []byte{0, 0, 0, 0}, iinf, iloc, iprp)
		return append(ftyp, meta...)
	}
	head := build(0)
	_ = ilocLen
	head = build(len(head))
	return append(head, bmff("mdat", item)...)
}

func TestInspectFormats(t *testing.T) {
	tiff := exifBlock(t, 29.0123, 106.0456, "2026:11:25 14:30:00")
	wantTime := time.Date(2026, 11, 25, 6, 30, 0, 0, time.UTC)
	cases := []struct {
		name     string
		data     []byte
		typ      Type
		w, h     int
		withExif bool
	}{
		{"jpeg", plainJPEG(t, 64, 48), JPEG, 64, 48, false},
		{"jpeg with exif", jpegWithExif(t, 32, 16, tiff), JPEG, 32, 16, true},
		{"png", plainPNG(t, 40, 30), PNG, 40, 30, false},
		{"png with eXIf", pngWithChunk(plainPNG(t, 40, 30), pngChunk("eXIf", tiff)), PNG, 40, 30, true},
		{"webp lossless", webp(vp8l(300, 200)), WebP, 300, 200, false},
		{"webp extended with exif", webp(vp8x(4000, 3000), vp8l(4000, 3000), riffChunk("EXIF", tiff)), WebP, 4000, 3000, true},
		{"heic", heic(4032, 3024, tiff), HEIC, 4032, 3024, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := Inspect(bytes.NewReader(c.data), int64(len(c.data)), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != c.typ || info.Width != c.w || info.Height != c.h {
				t.Fatalf("got %s %d×%d, want %s %d×%d", info.Type, info.Width, info.Height, c.typ, c.w, c.h)
			}
			if !c.withExif {
				if info.Exif.Lat != nil || info.Exif.Time != nil {
					t.Fatalf("EXIF found in a file without: %+v", info.Exif)
				}
				return
			}
			if info.Exif.Lat == nil || math.Abs(*info.Exif.Lat-29.0123) > 1e-6 || math.Abs(*info.Exif.Lon-106.0456) > 1e-6 {
				t.Fatalf("EXIF position %v,%v", info.Exif.Lat, info.Exif.Lon)
			}
			if info.Exif.Time == nil || !info.Exif.Time.Equal(wantTime) {
				t.Fatalf("EXIF time %v, want %v", info.Exif.Time, wantTime)
			}
		})
	}
	if _, err := Sniff([]byte("GIF89a")); !errors.Is(err, ErrUnknownType) {
		t.Fatal("GIF accepted")
	}
}

func problemOf(t *testing.T, err error) *Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("want a *Problem, got %v", err)
	}
	return p
}

func TestInspectRefusesHostileFiles(t *testing.T) {
	lim := DefaultLimits()
	bombIHDR := plainPNG(t, 1, 1)
	binary.BigEndian.PutUint32(bombIHDR[16:], 100000)
	binary.BigEndian.PutUint32(bombIHDR[20:], 100000)
	j := plainJPEG(t, 8, 8)
	cases := map[string]struct {
		data     []byte
		tooLarge bool
	}{
		"text claiming to be JPEG": {[]byte("this is not an image at all, honest"), false},
		"JPEG signature then junk": {append([]byte{0xFF, 0xD8, 0xFF, 0x00}, bytes.Repeat([]byte{1}, 100)...), false},
		"truncated JPEG":           {j[:20], false},
		"JPEG scan before frame":   {[]byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, false},
		"PNG decompression bomb":   {bombIHDR, true},
		"WebP decompression bomb":  {webp(vp8x(1<<24, 1<<24)), true},
		"HEIC decompression bomb":  {heic(100000, 100000, nil), true},
		"zero-size PNG":            {func() []byte { p := plainPNG(t, 1, 1); binary.BigEndian.PutUint32(p[16:], 0); return p }(), false},
		"PNG without IHDR":         {append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("tEXt", make([]byte, 20))...), false},
		"WebP claims 20 MB EXIF":   {webp(vp8x(10, 10), append([]byte("EXIF"), binary.LittleEndian.AppendUint32(nil, 20<<20)...)), true},
		"HEIC without meta":        {bmff("ftyp", []byte("heic"), []byte{0, 0, 0, 0}), false},
	}
	// A PNG whose eXIf length field says 20 MB.
	p := plainPNG(t, 4, 4)
	cases["PNG claims 20 MB EXIF"] = struct {
		data     []byte
		tooLarge bool
	}{pngWithChunk(p, append(append(binary.BigEndian.AppendUint32(nil, 20<<20), "eXIf"...), make([]byte, 16)...)), true}
	// A JPEG with 17 APP2 segments of 64 KiB before its frame header.
	many := []byte{0xFF, 0xD8}
	for range 17 {
		many = append(many, 0xFF, 0xE2, 0xFF, 0xFF)
		many = append(many, make([]byte, 0xFFFF-2)...)
	}
	cases["JPEG of endless APP blocks"] = struct {
		data     []byte
		tooLarge bool
	}{append(many, j[2:]...), true}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Inspect(bytes.NewReader(c.data), int64(len(c.data)), lim)
			if p := problemOf(t, err); p.TooLarge != c.tooLarge {
				t.Fatalf("%v: tooLarge=%v, want %v", err, p.TooLarge, c.tooLarge)
			}
		})
	}
}

// A real 20 MB EXIF block on disk is refused from its length field alone,
// without reading it.
func TestInspectTwentyMegabyteExifFromDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	p := plainPNG(t, 4, 4)
	at := 8 + 8 + 13 + 4
	f.Write(p[:at])
	f.Write(append(binary.BigEndian.AppendUint32(nil, 20<<20), "eXIf"...))
	f.Write(make([]byte, 20<<20))
	f.Write(p[at:])
	fi, _ := f.Stat()
	defer f.Close()
	var before, after runtimeMem
	before.read()
	_, err = Inspect(f, fi.Size(), DefaultLimits())
	after.read()
	if p := problemOf(t, err); !p.TooLarge {
		t.Fatalf("20 MB EXIF: %v", err)
	}
	if grew := after.total - before.total; grew > 1<<20 {
		t.Fatalf("Inspect allocated %d bytes for a refused EXIF block", grew)
	}
}

func TestParseExifWithoutGPS(t *testing.T) {
	e, err := ParseExif(exifBlock(t, math.NaN(), 0, "2026:01:02 03:04:05"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Lat != nil || e.Time == nil || !e.Time.Equal(time.Date(2026, 1, 1, 19, 4, 5, 0, time.UTC)) {
		t.Fatalf("%+v", e)
	}
	if _, err := ParseExif([]byte("garbage garbage garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
}

type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}

// go-exif trusts count fields: a GPS entry claiming 3 GB of text made it
// hang (found by FuzzParseExif). checkTIFF refuses it first.
func TestParseExifLyingCount(t *testing.T) {
	b := exifBlock(t, 29.5, 106.5, "2026:11:25 14:30:00")
	i := bytes.Index(b, []byte{0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02}) // GPSLatitudeRef, ASCII, count 2
	if i < 0 {
		t.Fatal("GPSLatitudeRef entry not found")
	}
	b[i+4] = 0xba
	done := make(chan error, 1)
	go func() { _, err := ParseExif(b); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("lying count accepted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ParseExif hangs on a lying count")
	}
}

// A next-directory link back to IFD0 must not loop the parser.
func TestParseExifDirectoryLoop(t *testing.T) {
	b := exifBlock(t, math.NaN(), 0, "2026:11:25 14:30:00")
	ifd0 := binary.BigEndian.Uint32(b[4:8])
	n := binary.BigEndian.Uint16(b[ifd0:])
	next := ifd0 + 2 + 12*uint32(n)
	binary.BigEndian.PutUint32(b[next:], ifd0)
	done := make(chan error, 1)
	go func() { _, err := ParseExif(b); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("directory loop accepted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ParseExif loops")
	}
}

// ParseExif shares go-exif's tables between calls; concurrent uploads
// parse at the same time (run with -race).
func TestParseExifConcurrently(t *testing.T) {
	b := exifBlock(t, 29.5, 106.5, "2026:11:25 14:30:00")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			e, err := ParseExif(b)
			if err == nil && (e.Lat == nil || e.Time == nil) {
				err = errors.New("position or time lost")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
