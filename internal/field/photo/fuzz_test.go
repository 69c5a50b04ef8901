package photo

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// FuzzInspect feeds arbitrary files to the sniffing and header parsing:
// no panic, no unbounded read, and any accepted image has a sane size.
// Seeds: testdata/fuzz/FuzzInspect plus the generated samples below.
func FuzzInspect(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s)
	}
	lim := Limits{MaxPixels: 50_000_000, MaxExifBytes: 64 << 10, MaxHeaderBytes: 256 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Inspect(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("error of a byte slice is not a *Problem: %v", err)
			}
			return
		}
		if info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > lim.MaxPixels {
			t.Fatalf("accepted %d×%d", info.Width, info.Height)
		}
		if _, err := Sniff(data); err != nil {
			t.Fatalf("accepted a file Sniff refuses: %v", err)
		}
	})
}

// FuzzParseExif feeds arbitrary EXIF blocks to go-exif through ParseExif.
func FuzzParseExif(f *testing.F) {
	f.Add(exifBlock(f, 29.5, 106.5, "2026:11:25 14:30:00"))
	f.Add(exifBlock(f, math.NaN(), 0, "2026:11:25 14:30:00"))
	f.Add(exifBlock(f, 29.5, 106.5, ""))
	f.Add([]byte("Exif\x00\x00II*\x00\x08\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseExif(data)
		if err != nil {
			return
		}
		if e.Lat != nil && !validLatLon(*e.Lat, *e.Lon) {
			t.Fatalf("invalid position %v,%v accepted", *e.Lat, *e.Lon)
		}
	})
}

func seedImages(tb testing.TB) [][]byte {
	tiff := exifBlock(tb, 29.0123, 106.0456, "2026:11:25 14:30:00")
	return [][]byte{
		plainJPEG(tb, 8, 8),
		jpegWithExif(tb, 8, 8, tiff),
		plainPNG(tb, 4, 4),
		pngWithChunk(plainPNG(tb, 4, 4), pngChunk("eXIf", tiff)),
		webp(vp8l(30, 20)),
		webp(vp8x(40, 30), vp8l(40, 30), riffChunk("EXIF", tiff)),
		heic(64, 48, tiff),
	}
}
