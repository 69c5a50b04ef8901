// Package photo checks what a phone uploads as a photo without decoding
// it: the type from the magic bytes (JPEG, PNG, WebP, HEIC), the pixel
// dimensions from the container header, and the EXIF position and capture
// time. Every read is bounded, so a hostile file (a decompression bomb, a
// 20 MB EXIF block, a truncated or looping header) costs a few hundred
// kilobytes of memory at most and is refused with a clear reason.
package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Type is a supported image format.
type Type string

// Supported types, named by their MIME content type.
const (
	JPEG Type = "image/jpeg"
	PNG  Type = "image/png"
	WebP Type = "image/webp"
	HEIC Type = "image/heic"
)

// ParseType returns the Type of a content type string.
func ParseType(s string) (Type, bool) {
	switch Type(s) {
	case JPEG, PNG, WebP, HEIC:
		return Type(s), true
	case "image/jpg":
		return JPEG, true
	case "image/heif":
		return HEIC, true
	}
	return "", false
}

// SniffLen is how many leading bytes Sniff needs.
const SniffLen = 32

// ErrUnknownType is returned for bytes that are none of the supported types.
var ErrUnknownType = errors.New("the file is not a JPEG, PNG, WebP or HEIC image")

// Sniff returns the type of an image from its first bytes (at least
// SniffLen of them when the file is that long).
func Sniff(head []byte) (Type, error) {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return JPEG, nil
	case len(head) >= 8 && bytes.Equal(head[:8], []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return WebP, nil
	case len(head) >= 12 && string(head[4:8]) == "ftyp" && isHEICBrand(head):
		return HEIC, nil
	}
	return "", ErrUnknownType
}

var heicBrands = []string{"heic", "heix", "heim", "heis", "hevc", "hevx"}

// isHEICBrand checks the ftyp box's major brand, or, for the generic
// mif1/msf1, the compatible brands within head.
func isHEICBrand(head []byte) bool {
	major := string(head[8:12])
	for _, b := range heicBrands {
		if major == b {
			return true
		}
	}
	if major != "mif1" && major != "msf1" {
		return false
	}
	size := int(binary.BigEndian.Uint32(head[:4]))
	for off := 16; off+4 <= len(head) && off+4 <= size; off += 4 {
		for _, b := range heicBrands {
			if string(head[off:off+4]) == b {
				return true
			}
		}
	}
	return false
}

// Limits bound what Inspect reads and accepts.
type Limits struct {
	// MaxPixels refuses images whose width × height is larger: the
	// decompression-bomb guard for anyone who later decodes the file.
	MaxPixels int64
	// MaxExifBytes refuses an EXIF block larger than this.
	MaxExifBytes int
	// MaxHeaderBytes bounds how far into the file the dimensions may lie.
	MaxHeaderBytes int64
}

// DefaultLimits are generous for phone cameras (200 MP sensors exist).
func DefaultLimits() Limits {
	return Limits{MaxPixels: 200_000_000, MaxExifBytes: 256 << 10, MaxHeaderBytes: 1 << 20}
}

// Info is what Inspect learns about an image.
type Info struct {
	Type          Type
	Width, Height int
	Exif          Exif
}

// Exif is the part of a photo's EXIF the field context compares with its
// report. Nil fields were absent.
type Exif struct {
	Lat, Lon *float64
	Time     *time.Time
}

// Problem is an error of the file itself (not of reading it): refused with
// InvalidArgument, or ResourceExhausted when TooLarge.
type Problem struct {
	Msg      string
	TooLarge bool
}

func (p *Problem) Error() string { return p.Msg }

func problem(format string, args ...any) error { return &Problem{Msg: fmt.Sprintf(format, args...)} }

func tooLarge(format string, args ...any) error {
	return &Problem{Msg: fmt.Sprintf(format, args...), TooLarge: true}
}

// Inspect reads the header of the image in r (size bytes) and returns its
// type, dimensions and EXIF. It never decodes pixels and never reads more
// than the limits allow. Errors of the file are *Problem; others are I/O.
func Inspect(r io.ReaderAt, size int64, lim Limits) (Info, error) {
	if lim.MaxPixels <= 0 || lim.MaxExifBytes <= 0 || lim.MaxHeaderBytes <= 0 {
		d := DefaultLimits()
		if lim.MaxPixels <= 0 {
			lim.MaxPixels = d.MaxPixels
		}
		if lim.MaxExifBytes <= 0 {
			lim.MaxExifBytes = d.MaxExifBytes
		}
		if lim.MaxHeaderBytes <= 0 {
			lim.MaxHeaderBytes = d.MaxHeaderBytes
		}
	}
	head := make([]byte, min(int64(SniffLen), size))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return Info{}, err
	}
	t, err := Sniff(head)
	if err != nil {
		return Info{}, &Problem{Msg: err.Error()}
	}
	br := &boundedReader{r: r, size: size}
	var info Info
	var rawExif []byte
	switch t {
	case JPEG:
		info, rawExif, err = inspectJPEG(br, lim)
	case PNG:
		info, rawExif, err = inspectPNG(br, lim)
	case WebP:
		info, rawExif, err = inspectWebP(br, lim)
	case HEIC:
		info, rawExif, err = inspectHEIC(br, lim)
	}
	if err != nil {
		return Info{}, err
	}
	info.Type = t
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, problem("the %s header gives no image size", t)
	}
	if px := int64(info.Width) * int64(info.Height); px > lim.MaxPixels {
		return Info{}, tooLarge("the image is %d × %d pixels (%d megapixels), more than the %d allowed",
			info.Width, info.Height, px/1_000_000, lim.MaxPixels/1_000_000)
	}
	if len(rawExif) > 0 {
		// A damaged EXIF block is not a reason to refuse a photo: the
		// comparison with the report is simply not possible.
		info.Exif, _ = ParseExif(rawExif)
	}
	return info, nil
}

// boundedReader reads pieces of the file, failing cleanly past its end.
type boundedReader struct {
	r    io.ReaderAt
	size int64
}

func (b *boundedReader) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > b.size {
		return nil, problem("the image header is truncated")
	}
	buf := make([]byte, n)
	if _, err := b.r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, problem("the image header is truncated")
		}
		return nil, err
	}
	return buf, nil
}
