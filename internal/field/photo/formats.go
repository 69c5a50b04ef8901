package photo

import (
	"bytes"
	"encoding/binary"
)

// maxSegments bounds the number of container segments or boxes walked, so
// a file of a million empty segments cannot keep a request busy.
const maxSegments = 4096

// inspectJPEG walks the marker segments up to the frame header (SOFn),
// keeping the first APP1 Exif block. Segments are at most 64 KiB each and
// the walk stops after MaxHeaderBytes.
func inspectJPEG(br *boundedReader, lim Limits) (Info, []byte, error) {
	off := int64(2)
	var exif []byte
	for i := 0; ; i++ {
		if off > lim.MaxHeaderBytes || i > maxSegments {
			return Info{}, nil, tooLarge("the JPEG header is larger than %d bytes", lim.MaxHeaderBytes)
		}
		b, err := br.read(off, 2)
		if err != nil {
			return Info{}, nil, err
		}
		if b[0] != 0xFF {
			return Info{}, nil, problem("the JPEG is damaged: no marker at byte %d", off)
		}
		m := b[1]
		if m == 0xFF { // fill byte
			off++
			continue
		}
		off += 2
		switch {
		case m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7):
			continue // markers without a length
		case m == 0xD9 || m == 0xDA:
			return Info{}, nil, problem("the JPEG has no frame header before its image data")
		}
		lb, err := br.read(off, 2)
		if err != nil {
			return Info{}, nil, err
		}
		n := int64(binary.BigEndian.Uint16(lb))
		if n < 2 {
			return Info{}, nil, problem("the JPEG is damaged: segment length %d at byte %d", n, off)
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			sof, err := br.read(off+2, 5)
			if err != nil {
				return Info{}, nil, err
			}
			h := int(binary.BigEndian.Uint16(sof[1:3]))
			w := int(binary.BigEndian.Uint16(sof[3:5]))
			return Info{Width: w, Height: h}, exif, nil
		}
		if m == 0xE1 && exif == nil && n >= 8 {
			hdr, err := br.read(off+2, 6)
			if err != nil {
				return Info{}, nil, err
			}
			if string(hdr) == "Exif\x00\x00" {
				if int(n-8) > lim.MaxExifBytes {
					return Info{}, nil, tooLarge("the EXIF block has %d bytes, at most %d are allowed", n-8, lim.MaxExifBytes)
				}
				exif, err = br.read(off+8, int(n-8))
				if err != nil {
					return Info{}, nil, err
				}
			}
		}
		off += n
	}
}

// inspectPNG reads IHDR (which must come first) and looks for an eXIf
// chunk before the image data.
func inspectPNG(br *boundedReader, lim Limits) (Info, []byte, error) {
	ihdr, err := br.read(8, 24)
	if err != nil {
		return Info{}, nil, err
	}
	if binary.BigEndian.Uint32(ihdr[:4]) != 13 || string(ihdr[4:8]) != "IHDR" {
		return Info{}, nil, problem("the PNG does not start with its IHDR header")
	}
	w := binary.BigEndian.Uint32(ihdr[8:12])
	h := binary.BigEndian.Uint32(ihdr[12:16])
	if w > 1<<31-1 || h > 1<<31-1 {
		return Info{}, nil, problem("the PNG size %d × %d is invalid", w, h)
	}
	info := Info{Width: int(w), Height: int(h)}
	off := int64(8 + 8 + 13 + 4)
	for i := 0; i < maxSegments && off+8 <= br.size; i++ {
		hdr, err := br.read(off, 8)
		if err != nil {
			return Info{}, nil, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch typ {
		case "IDAT", "IEND":
			return info, nil, nil
		case "eXIf":
			if n > int64(lim.MaxExifBytes) {
				return Info{}, nil, tooLarge("the EXIF block has %d bytes, at most %d are allowed", n, lim.MaxExifBytes)
			}
			exif, err := br.read(off+8, int(n))
			if err != nil {
				return Info{}, nil, err
			}
			return info, exif, nil
		}
		off += 8 + n + 4
	}
	return info, nil, nil
}

// inspectWebP walks the RIFF chunks: VP8X, VP8 or VP8L give the size, an
// EXIF chunk (which follows the image data in extended files) the EXIF.
// Only chunk headers are read on the way.
func inspectWebP(br *boundedReader, lim Limits) (Info, []byte, error) {
	var info Info
	var exif []byte
	off := int64(12)
	for i := 0; i < maxSegments && off+8 <= br.size; i++ {
		hdr, err := br.read(off, 8)
		if err != nil {
			return Info{}, nil, err
		}
		typ := string(hdr[:4])
		n := int64(binary.LittleEndian.Uint32(hdr[4:8]))
		payload := off + 8
		switch typ {
		case "VP8X":
			p, err := br.read(payload, 10)
			if err != nil {
				return Info{}, nil, err
			}
			info.Width = 1 + int(uint32(p[4])|uint32(p[5])<<8|uint32(p[6])<<16)
			info.Height = 1 + int(uint32(p[7])|uint32(p[8])<<8|uint32(p[9])<<16)
		case "VP8 ":
			p, err := br.read(payload, 10)
			if err != nil {
				return Info{}, nil, err
			}
			if !bytes.Equal(p[3:6], []byte{0x9d, 0x01, 0x2a}) {
				return Info{}, nil, problem("the WebP VP8 frame header is damaged")
			}
			if info.Width == 0 {
				info.Width = int(binary.LittleEndian.Uint16(p[6:8]) & 0x3fff)
				info.Height = int(binary.LittleEndian.Uint16(p[8:10]) & 0x3fff)
			}
			if exif == nil && info.Width > 0 && !hasVP8X(br) {
				return info, nil, nil
			}
		case "VP8L":
			p, err := br.read(payload, 5)
			if err != nil {
				return Info{}, nil, err
			}
			if p[0] != 0x2f {
				return Info{}, nil, problem("the WebP lossless header is damaged")
			}
			bits := binary.LittleEndian.Uint32(p[1:5])
			if info.Width == 0 {
				info.Width = 1 + int(bits&0x3fff)
				info.Height = 1 + int((bits>>14)&0x3fff)
			}
			if !hasVP8X(br) {
				return info, nil, nil
			}
		case "EXIF":
			if n > int64(lim.MaxExifBytes) {
				return Info{}, nil, tooLarge("the EXIF block has %d bytes, at most %d are allowed", n, lim.MaxExifBytes)
			}
			exif, err = br.read(payload, int(n))
			if err != nil {
				return Info{}, nil, err
			}
			return info, exif, nil
		}
		off = payload + n + n&1
	}
	if info.Width == 0 {
		return Info{}, nil, problem("the WebP has no image header")
	}
	return info, exif, nil
}

func hasVP8X(br *boundedReader) bool {
	b, err := br.read(12, 4)
	return err == nil && string(b) == "VP8X"
}

// box is an ISO BMFF box inside a byte slice.
type box struct {
	typ  string
	data []byte // payload after the header
}

// boxes splits b into boxes; a malformed size ends the list.
func boxes(b []byte) []box {
	var out []box
	for len(b) >= 8 && len(out) < maxSegments {
		size := uint64(binary.BigEndian.Uint32(b[:4]))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return out
			}
			size = binary.BigEndian.Uint64(b[8:16])
			hdr = 16
		}
		if size < hdr || size > uint64(len(b)) {
			return out
		}
		out = append(out, box{typ: typ, data: b[hdr:size]})
		b = b[size:]
	}
	return out
}

func child(bs []box, typ string) (box, bool) {
	for _, b := range bs {
		if b.typ == typ {
			return b, true
		}
	}
	return box{}, false
}

// inspectHEIC finds the meta box among the top-level boxes (reading only
// their headers), reads it whole (bounded), takes the largest ispe as the
// image size and locates the Exif item through iinf and iloc.
func inspectHEIC(br *boundedReader, lim Limits) (Info, []byte, error) {
	off := int64(0)
	var meta []byte
	for i := 0; i < maxSegments && off+8 <= br.size; i++ {
		hdr, err := br.read(off, 8)
		if err != nil {
			return Info{}, nil, err
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		hlen := int64(8)
		if size == 1 {
			ext, err := br.read(off+8, 8)
			if err != nil {
				return Info{}, nil, err
			}
			size, hlen = int64(binary.BigEndian.Uint64(ext)), 16
		} else if size == 0 {
			size = br.size - off
		}
		if size < hlen || off+size > br.size || size < 0 {
			return Info{}, nil, problem("the HEIC box at byte %d is damaged", off)
		}
		if string(hdr[4:8]) == "meta" {
			if size > lim.MaxHeaderBytes {
				return Info{}, nil, tooLarge("the HEIC metadata has %d bytes, at most %d are allowed", size, lim.MaxHeaderBytes)
			}
			meta, err = br.read(off+hlen, int(size-hlen))
			if err != nil {
				return Info{}, nil, err
			}
			break
		}
		off += size
	}
	if len(meta) < 4 {
		return Info{}, nil, problem("the HEIC has no metadata box")
	}
	mb := boxes(meta[4:]) // FullBox: version and flags first
	var info Info
	if iprp, ok := child(mb, "iprp"); ok {
		if ipco, ok := child(boxes(iprp.data), "ipco"); ok {
			for _, p := range boxes(ipco.data) {
				if p.typ != "ispe" || len(p.data) < 12 {
					continue
				}
				w := binary.BigEndian.Uint32(p.data[4:8])
				h := binary.BigEndian.Uint32(p.data[8:12])
				if w > 1<<31-1 || h > 1<<31-1 {
					return Info{}, nil, problem("the HEIC size %d × %d is invalid", w, h)
				}
				if uint64(w)*uint64(h) > uint64(info.Width)*uint64(info.Height) {
					info.Width, info.Height = int(w), int(h)
				}
			}
		}
	}
	exif, err := heicExif(br, mb, lim)
	if err != nil {
		return Info{}, nil, err
	}
	return info, exif, nil
}

// heicExif returns the Exif item's TIFF block, or nil when there is none
// or the item tables are unusable.
func heicExif(br *boundedReader, mb []box, lim Limits) ([]byte, error) {
	iinf, ok := child(mb, "iinf")
	if !ok || len(iinf.data) < 6 {
		return nil, nil
	}
	skip := 6 // version/flags + u16 count
	if iinf.data[0] != 0 {
		skip = 8
	}
	if len(iinf.data) < skip {
		return nil, nil
	}
	var exifID uint32
	found := false
	for _, e := range boxes(iinf.data[skip:]) {
		d := e.data
		if e.typ != "infe" || len(d) < 4 {
			continue
		}
		switch d[0] {
		case 2:
			if len(d) >= 12 && string(d[8:12]) == "Exif" {
				exifID, found = uint32(binary.BigEndian.Uint16(d[4:6])), true
			}
		case 3:
			if len(d) >= 14 && string(d[10:14]) == "Exif" {
				exifID, found = binary.BigEndian.Uint32(d[4:8]), true
			}
		}
	}
	iloc, ok := child(mb, "iloc")
	if !found || !ok {
		return nil, nil
	}
	offset, length, ok := ilocExtent(iloc.data, exifID)
	if !ok {
		return nil, nil
	}
	if length > uint64(lim.MaxExifBytes)+4 {
		return nil, tooLarge("the EXIF block has %d bytes, at most %d are allowed", length, lim.MaxExifBytes)
	}
	if offset > uint64(br.size) || length < 4 {
		return nil, nil
	}
	item, err := br.read(int64(offset), int(length))
	if err != nil {
		return nil, err
	}
	// An Exif item starts with the offset of the TIFF header.
	start := uint64(binary.BigEndian.Uint32(item[:4])) + 4
	if start >= uint64(len(item)) {
		return nil, nil
	}
	return item[start:], nil
}

// ilocExtent returns the file offset and length of the first extent of
// item id from an iloc box (versions 0–2, construction method 0).
func ilocExtent(d []byte, id uint32) (offset, length uint64, ok bool) {
	r := byteReader{b: d}
	version := r.u(1)
	r.u(3)
	sizes := r.u(1)
	offSize, lenSize := int(sizes>>4), int(sizes&15)
	sizes = r.u(1)
	baseSize, idxSize := int(sizes>>4), int(sizes&15)
	if version == 0 {
		idxSize = 0
	}
	var count uint64
	if version < 2 {
		count = r.u(2)
	} else {
		count = r.u(4)
	}
	for i := uint64(0); i < count && !r.bad && i < maxSegments; i++ {
		var itemID uint64
		if version < 2 {
			itemID = r.u(2)
		} else {
			itemID = r.u(4)
		}
		method := uint64(0)
		if version >= 1 {
			method = r.u(2) & 15
		}
		r.u(2) // data reference index
		base := r.u(baseSize)
		extents := r.u(2)
		for j := uint64(0); j < extents && !r.bad && j < maxSegments; j++ {
			r.u(idxSize)
			eo, el := r.u(offSize), r.u(lenSize)
			if j == 0 && uint32(itemID) == id && method == 0 && !r.bad {
				return base + eo, el, true
			}
		}
	}
	return 0, 0, false
}

// byteReader reads big-endian integers of 0–8 bytes, remembering overruns.
type byteReader struct {
	b   []byte
	bad bool
}

func (r *byteReader) u(n int) uint64 {
	if n == 0 {
		return 0
	}
	if n > 8 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return 0
	}
	var v uint64
	for _, c := range r.b[:n] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[n:]
	return v
}
