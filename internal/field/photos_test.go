package field

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/field/blob"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// testJPEG returns a small JPEG with an EXIF GPS position (unless lat is
// NaN) and capture time, padded after its end marker to size bytes with
// random data (viewers ignore trailing bytes; the size is what matters for
// uploads).
func testJPEG(t testing.TB, lat, lon float64, taken time.Time, size int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	im, _ := exifcommon.NewIfdMappingWithStandard()
	ib := exif.NewIfdBuilder(im, exif.NewTagIndex(), exifcommon.IfdStandardIfdIdentity, binary.BigEndian)
	eib, _ := exif.GetOrCreateIbFromRootIb(ib, "IFD/Exif")
	if err := eib.SetStandardWithName("DateTimeOriginal", taken.In(chinaTime).Format("2006:01:02 15:04:05")); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(lat) {
		gib, _ := exif.GetOrCreateIbFromRootIb(ib, "IFD/GPSInfo")
		dms := func(v float64) []exifcommon.Rational {
			d := math.Floor(v)
			m := math.Floor((v - d) * 60)
			s := (v - d - m/60) * 3600
			return []exifcommon.Rational{{Numerator: uint32(d), Denominator: 1}, {Numerator: uint32(m), Denominator: 1},
				{Numerator: uint32(math.Round(s * 1000)), Denominator: 1000}}
		}
		for k, v := range map[string]any{"GPSVersionID": []byte{2, 2, 0, 0}, "GPSLatitudeRef": "N", "GPSLatitude": dms(lat),
			"GPSLongitudeRef": "E", "GPSLongitude": dms(lon)} {
			if err := gib.SetStandardWithName(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	tiff, err := exif.NewIfdByteEncoder().EncodeToExif(ib)
	if err != nil {
		t.Fatal(err)
	}
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out = append(out, seg...)
	out = append(out, buf.Bytes()[2:]...)
	if pad := size - len(out); pad > 0 {
		r := rand.New(rand.NewPCG(uint64(size), 7))
		p := make([]byte, pad)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		out = append(out, p...)
	}
	return out
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// send writes data from offset in chunks of n bytes.
func send(t testing.TB, u *Upload, data []byte, from, n int) UploadStatus {
	t.Helper()
	var st UploadStatus
	for off := from; off < len(data); off += n {
		var err error
		st, err = u.Write(context.Background(), int64(off), data[off:min(off+n, len(data))])
		if err != nil {
			t.Fatalf("chunk at %d: %v", off, err)
		}
	}
	return st
}

func header(data []byte) UploadHeader {
	return UploadHeader{UploadID: uuid.NewString(), Size: int64(len(data)), SHA256: sum(data), ContentType: "image/jpeg"}
}

func TestUploadResumesAfterDropAndDeduplicates(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 100 << 10})
	ctx := context.Background()
	data := testJPEG(t, 29.0101, 106.0501, e.clock.Now(), 700<<10)
	h := header(data)
	u, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	// 350 KiB arrive, then the connection drops.
	send(t, u, data[:350<<10], 0, 64<<10)
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := e.f.UploadStatus(ctx, inspectorA, h.UploadID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete || st.Committed != 350<<10 {
		t.Fatalf("after drop: %+v", st)
	}
	_, err = e.f.UploadStatus(ctx, inspectorB, h.UploadID, "", "")
	wantCode(t, err, codes.NotFound)

	// The app reconnects and resumes from the committed offset.
	u, err = e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, data[:1024])
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "expected offset 358400") {
		t.Fatalf("error does not name the expected offset: %v", err)
	}
	st = send(t, u, data, int(u.Status().Committed), 64<<10)
	if !st.Complete || st.Photo == nil || st.Photo.Width != 64 || st.Photo.Height != 48 || st.Photo.ExifLat == nil {
		t.Fatalf("completed: %+v", st)
	}
	_, err = u.Write(ctx, int64(len(data)), []byte{1})
	wantCode(t, err, codes.FailedPrecondition)
	u.Close(ctx)

	// Stored by its hash, exactly the bytes sent.
	stored, err := os.ReadFile(filepath.Join(e.blobs.Root, "blobs", h.SHA256[:2], h.SHA256[2:4], h.SHA256))
	if err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("stored blob differs (%v)", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.blobs.Root, "partial")); len(ents) != 0 {
		t.Fatalf("%d partial files left", len(ents))
	}

	// A new stream on the completed upload: complete at once; a chunk is refused.
	again, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil || !again.Status().Complete {
		t.Fatalf("reopened: %+v %v", again.Status(), err)
	}
	_, err = again.Write(ctx, 0, data[:10])
	wantCode(t, err, codes.FailedPrecondition)

	// Same photo, new upload id, another inspector: stored once, no bytes sent.
	h2 := h
	h2.UploadID = uuid.NewString()
	dup, err := e.f.BeginUpload(ctx, inspectorB, h2)
	if err != nil || !dup.Status().Complete {
		t.Fatalf("dedup: %+v %v", dup.Status(), err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.photos`); n != 1 {
		t.Fatalf("%d photo rows", n)
	}
	// The same upload id for another file is a conflict.
	h3 := h
	h3.SHA256 = strings.Repeat("a", 64)
	_, err = e.f.BeginUpload(ctx, inspectorA, h3)
	wantCode(t, err, codes.AlreadyExists)
}

func TestUploadBadInput(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	data := testJPEG(t, 29.01, 106.05, e.clock.Now(), 50<<10)

	big := header(data)
	big.Size = 20<<20 + 1
	_, err := e.f.BeginUpload(ctx, inspectorA, big)
	wantCode(t, err, codes.ResourceExhausted)
	for name, mut := range map[string]func(h *UploadHeader){
		"bad id":          func(h *UploadHeader) { h.UploadID = "../../etc/passwd" },
		"bad sha":         func(h *UploadHeader) { h.SHA256 = "xyz" },
		"zero size":       func(h *UploadHeader) { h.Size = 0 },
		"gif":             func(h *UploadHeader) { h.ContentType = "image/gif" },
		"bad report id":   func(h *UploadHeader) { h.ReportID = "r1" },
		"negative size":   func(h *UploadHeader) { h.Size = -5 },
		"executable type": func(h *UploadHeader) { h.ContentType = "application/x-sh" },
	} {
		h := header(data)
		mut(&h)
		if _, err := e.f.BeginUpload(ctx, inspectorA, h); codeOf(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A file that claims JPEG but is not: refused at the first chunk.
	fake := []byte(strings.Repeat("#!/bin/sh\necho pwned\n", 100))
	u, err := e.f.BeginUpload(ctx, inspectorA, header(fake))
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, fake[:1000])
	wantCode(t, err, codes.InvalidArgument)
	u.Close(ctx)
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads`); n != 0 {
		t.Fatal("the refused upload is kept")
	}

	// A PNG declared as JPEG.
	var pbuf bytes.Buffer
	png.Encode(&pbuf, image.NewGray(image.Rect(0, 0, 10, 10)))
	u, err = e.f.BeginUpload(ctx, inspectorA, header(pbuf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, pbuf.Bytes())
	wantCode(t, err, codes.InvalidArgument)
	u.Close(ctx)

	// SHA-256 mismatch: refused at the end; the upload starts again from 0.
	h := header(data)
	h.SHA256 = sum([]byte("something else"))
	u, err = e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, data[:40<<10])
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 40<<10, data[40<<10:])
	wantCode(t, err, codes.InvalidArgument)
	u.Close(ctx)
	if n := count(t, e.pool, `SELECT count(*) FROM field.photos`); n != 0 {
		t.Fatal("photo with the wrong hash stored")
	}
	u, err = e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil || u.Status().Committed != 0 {
		t.Fatalf("after mismatch: %+v %v", u.Status(), err)
	}
	u.Close(ctx)

	// Chunk past the declared size, oversized chunk, empty chunk.
	h = header(data)
	u, err = e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, append(append([]byte{}, data...), 1, 2, 3))
	wantCode(t, err, codes.InvalidArgument)
	_, err = u.Write(ctx, 0, make([]byte, 1<<20+1))
	wantCode(t, err, codes.InvalidArgument)
	_, err = u.Write(ctx, 0, nil)
	wantCode(t, err, codes.InvalidArgument)
	u.Close(ctx)

	// A decompression bomb: a valid PNG header claiming 100000 × 100000.
	bomb := pbuf.Bytes()
	bomb = append([]byte{}, bomb...)
	binary.BigEndian.PutUint32(bomb[16:], 100000)
	binary.BigEndian.PutUint32(bomb[20:], 100000)
	bh := header(bomb)
	bh.ContentType = "image/png"
	u, err = e.f.BeginUpload(ctx, inspectorA, bh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Write(ctx, 0, bomb)
	wantCode(t, err, codes.ResourceExhausted)
	u.Close(ctx)
	if n := count(t, e.pool, `SELECT count(*) FROM field.photos`); n != 0 {
		t.Fatal("bomb stored")
	}

	// Nothing accepted earlier is lost: a good upload still completes.
	u, err = e.f.BeginUpload(ctx, inspectorA, header(data))
	if err != nil {
		t.Fatal(err)
	}
	if st := send(t, u, data, 0, 16<<10); !st.Complete {
		t.Fatalf("good upload: %+v", st)
	}
}

func TestPhotoExifComparedWithReportAndDownloadScope(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	now := e.clock.Now()
	near := testJPEG(t, 29.0102, 106.0502, now.Add(-5*time.Minute), 20<<10)
	far := testJPEG(t, 29.08, 106.15, now.Add(-5*time.Minute), 20<<10) // ~12 km away
	old := testJPEG(t, math.NaN(), 0, now.Add(-30*24*time.Hour), 20<<10)

	// The far photo arrives before its report, the others after.
	u, err := e.f.BeginUpload(ctx, inspectorA, header(far))
	if err != nil {
		t.Fatal(err)
	}
	send(t, u, far, 0, 8<<10)

	d := e.draft(29.01, 106.05)
	d.PhotoSHA256 = []string{sum(near), sum(far), sum(old)}
	r, _, err := e.f.SubmitReport(ctx, inspectorA, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ExifMismatch) != 1 || r.ExifMismatch[0] != sum(far) {
		t.Fatalf("mismatch at submit: %v", r.ExifMismatch)
	}
	for _, p := range [][]byte{near, old} {
		h := header(p)
		h.ReportID = d.ID
		u, err := e.f.BeginUpload(ctx, inspectorA, h)
		if err != nil {
			t.Fatal(err)
		}
		st := send(t, u, p, 0, 8<<10)
		if want := bytes.Equal(p, old); st.ExifMismatch != want {
			t.Fatalf("upload mismatch=%v, want %v", st.ExifMismatch, want)
		}
	}
	got, err := e.f.GetReport(ctx, inspectorA, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ExifMismatch) != 2 {
		t.Fatalf("report mismatches %v, want far and old", got.ExifMismatch)
	}
	// An upload made with an upload id is found by report id and hash.
	st, err := e.f.UploadStatus(ctx, inspectorA, "", d.ID, sum(near))
	if err != nil || !st.Complete {
		t.Fatalf("status by report+hash for an upload made with an upload id: %+v %v", st, err)
	}

	read := func(c scope.Caller) ([]byte, error) {
		meta, rd, err := e.f.OpenPhoto(ctx, c, sum(near))
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		if meta.Width != 64 {
			t.Fatalf("meta %+v", meta)
		}
		return io.ReadAll(rd)
	}
	for _, c := range []scope.Caller{inspectorA, supervisor, officer} {
		b, err := read(c)
		if err != nil || !bytes.Equal(b, near) {
			t.Fatalf("%s cannot read the photo: %v", c.PersonID, err)
		}
	}
	for _, c := range []scope.Caller{inspectorB, officer2} {
		_, err := read(c)
		wantCode(t, err, codes.NotFound)
	}
	// B references A's photo in a report of their own: still not B's to read.
	steal := e.draft(29.01, 106.15)
	steal.PhotoSHA256 = []string{sum(near)}
	stolen, _, err := e.f.SubmitReport(ctx, inspectorB, steal)
	if err != nil {
		t.Fatal(err)
	}
	if len(stolen.ExifMismatch) != 0 || count(t, e.pool, `SELECT count(*) FROM field.report_photos WHERE report_id = $1`, steal.ID) != 0 {
		t.Fatal("someone else's photo compared with B's report")
	}
	_, err = read(inspectorB)
	wantCode(t, err, codes.NotFound)
	if _, err := read(caller(uuid.NewString(), scope.RoleAdmin, "")); err != nil {
		t.Fatalf("administrator: %v", err)
	}
}

func TestUploadByReportIDAndJanitor(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 4 << 10})
	ctx := context.Background()
	data := testJPEG(t, 29.01, 106.05, e.clock.Now(), 30<<10)
	rid := uuid.NewString()
	h := UploadHeader{ReportID: rid, Size: int64(len(data)), SHA256: sum(data), ContentType: "image/jpeg"}
	u, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	send(t, u, data[:10<<10], 0, 5<<10)
	u.Close(ctx)
	st, err := e.f.UploadStatus(ctx, inspectorA, "", rid, sum(data))
	if err != nil || st.Committed != 10<<10 {
		t.Fatalf("status by report: %+v %v", st, err)
	}
	// An orphan partial file with no row.
	orphan := filepath.Join(e.blobs.Root, "partial", uuid.NewString())
	os.WriteFile(orphan, []byte("x"), 0o600)
	old := time.Now().Add(-30 * 24 * time.Hour)
	os.Chtimes(orphan, old, old)

	if n, err := e.f.CleanAbandonedUploads(ctx); err != nil || n != 0 {
		t.Fatalf("fresh upload removed: %d %v", n, err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatal("orphan partial file kept")
	}
	e.clock.Add(8 * 24 * time.Hour)
	if n, err := e.f.CleanAbandonedUploads(ctx); err != nil || n != 1 {
		t.Fatalf("abandoned upload: %d %v", n, err)
	}
	_, err = e.f.UploadStatus(ctx, inspectorA, "", rid, sum(data))
	wantCode(t, err, codes.NotFound)
	if ents, _ := os.ReadDir(filepath.Join(e.blobs.Root, "partial")); len(ents) != 0 {
		t.Fatalf("%d partial files left", len(ents))
	}
}

// Issue 14: an upload started with an upload id is found by its report
// and hash, one started without an id by the id it was given, and an
// upload needs no id at all — the derived one is the same on every retry.
func TestUploadIsFoundWhicheverWayItWasNamed(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 4 << 10})
	ctx := context.Background()
	data := testJPEG(t, 29.01, 106.05, e.clock.Now(), 30<<10)
	rid := uuid.NewString()

	// Started with an app-chosen id and a report: found by the report
	// (with or without the hash) and by the hash alone.
	h := header(data)
	h.ReportID = rid
	u, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	send(t, u, data[:8<<10], 0, 4<<10)
	u.Close(ctx)
	for _, q := range [][2]string{{rid, sum(data)}, {rid, ""}, {"", sum(data)}, {strings.ToUpper(rid), ""}} {
		st, err := e.f.UploadStatus(ctx, inspectorA, "", q[0], q[1])
		if err != nil || st.UploadID != h.UploadID || st.Committed != 8<<10 {
			t.Fatalf("status by %q: %+v %v", q, st, err)
		}
	}
	if _, err := e.f.UploadStatus(ctx, inspectorB, "", rid, ""); structerr.Code(err) != codes.NotFound {
		t.Fatalf("another person finds the upload: %v", err)
	}
	// The app lost the id and resumes with report and hash only: it
	// continues the same upload rather than starting a second one.
	u, err = e.f.BeginUpload(ctx, inspectorA, UploadHeader{ReportID: rid, Size: h.Size, SHA256: h.SHA256, ContentType: h.ContentType})
	if err != nil {
		t.Fatal(err)
	}
	if st := u.Status(); st.UploadID != h.UploadID || st.Committed != 8<<10 {
		t.Fatalf("resumed without id: %+v", st)
	}
	u.Close(ctx)

	// No id and no report: the id is derived from the uploader and hash,
	// the same on a retry; the status is found by that id and by the hash.
	other := testJPEG(t, 29.02, 106.05, e.clock.Now(), 20<<10)
	bare := UploadHeader{Size: int64(len(other)), SHA256: sum(other), ContentType: "image/jpeg"}
	u1, err := e.f.BeginUpload(ctx, inspectorA, bare)
	if err != nil {
		t.Fatal(err)
	}
	first := u1.Status().UploadID
	send(t, u1, other[:4<<10], 0, 4<<10)
	u1.Close(ctx)
	u2, err := e.f.BeginUpload(ctx, inspectorA, bare)
	if err != nil {
		t.Fatal(err)
	}
	if st := u2.Status(); st.UploadID != first || st.Committed != 4<<10 {
		t.Fatalf("retry without id: %+v, first id %s", st, first)
	}
	st := send(t, u2, other, 4<<10, 8<<10)
	if !st.Complete {
		t.Fatalf("not complete: %+v", st)
	}
	for _, q := range [][2]string{{first, ""}, {"", sum(other)}} {
		if st, err := e.f.UploadStatus(ctx, inspectorA, q[0], "", q[1]); err != nil || !st.Complete || st.UploadID != first {
			t.Fatalf("status by %q: %+v %v", q, st, err)
		}
	}
	// B's own upload of the same bytes gets another id.
	ub, err := e.f.BeginUpload(ctx, inspectorB, bare)
	if err != nil {
		t.Fatal(err)
	}
	if ub.Status().UploadID == first {
		t.Fatal("two people share a derived upload id")
	}
	_, err = e.f.UploadStatus(ctx, inspectorA, "", "", "")
	wantCode(t, err, codes.InvalidArgument)
}

// A PNG carrying a 19 MiB EXIF block: refused as too large once the file
// is complete, nothing stored, and the server never holds the block.
func TestUploadHugeExifBlock(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	var pbuf bytes.Buffer
	png.Encode(&pbuf, image.NewGray(image.Rect(0, 0, 4, 4)))
	p := pbuf.Bytes()
	at := 8 + 8 + 13 + 4
	data := append([]byte{}, p[:at]...)
	data = binary.BigEndian.AppendUint32(data, 19<<20)
	data = append(data, "eXIf"...)
	data = append(data, make([]byte, 19<<20+4)...)
	data = append(data, p[at:]...)
	h := header(data)
	h.ContentType = "image/png"
	u, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var last error
	for off := 0; off < len(data); off += 1 << 20 {
		_, last = u.Write(ctx, int64(off), data[off:min(off+1<<20, len(data))])
		if last != nil && off+1<<20 < len(data) {
			t.Fatalf("chunk at %d: %v", off, last)
		}
	}
	runtime.ReadMemStats(&ms1)
	wantCode(t, last, codes.ResourceExhausted)
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 4<<20 {
		t.Fatalf("the upload allocated %d bytes", grew)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.photos`); n != 0 {
		t.Fatal("stored")
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads`); n != 0 {
		t.Fatal("refused upload kept")
	}
}

// A crash after the photo moved into the store but before it was recorded
// (gridd killed, PostgreSQL restarting) must not turn the uploader's own
// bytes into a deduplicated claim: the resumed upload completes as theirs
// and they can read the photo. Found by the fault-injection runs.
func TestUploadCompletedAcrossCrashBeforeRecordStaysTheUploaders(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 100 << 10})
	ctx := context.Background()
	data := testJPEG(t, 29.0101, 106.0501, e.clock.Now(), 300<<10)
	h := header(data)
	u, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if st := send(t, u, data, 0, 64<<10); !st.Complete {
		t.Fatalf("not complete: %+v", st)
	}
	u.Close(ctx)
	// Put the database back where the crash left it: bytes committed and the
	// blob in the store, but no photo row and the upload not completed.
	if _, err := e.pool.Exec(ctx, `DELETE FROM field.photos WHERE sha256 = $1`, h.SHA256); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE field.uploads SET completed_at = NULL, deduplicated = false, hash_state = NULL WHERE id = $1`, h.UploadID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads WHERE id = $1 AND committed_offset = $2`, h.UploadID, len(data)); n != 1 {
		t.Fatal("finish did not record every byte as committed before moving the file")
	}
	// The phone reconnects with the same upload id.
	again, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil || !again.Status().Complete {
		t.Fatalf("resumed: %+v %v", again.Status(), err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads WHERE id = $1 AND completed_at IS NOT NULL AND NOT deduplicated`, h.UploadID); n != 1 {
		t.Fatal("the uploader's own bytes were recorded as a deduplicated claim")
	}
	// Another inspector's new upload of the same photo still sends nothing and gets no read right.
	h2 := h
	h2.UploadID = uuid.NewString()
	dup, err := e.f.BeginUpload(ctx, inspectorB, h2)
	if err != nil || !dup.Status().Complete {
		t.Fatalf("dedup: %+v %v", dup.Status(), err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads WHERE id = $1 AND deduplicated`, h2.UploadID); n != 1 {
		t.Fatal("a second uploader who sent no bytes was not marked deduplicated")
	}
}

// failPromote is the photo store with one fault: moving a finished upload
// into place fails once, as it does when the stream is cut or the process
// stops between committing the last byte and storing the photo.
type failPromote struct {
	*blob.FS
	failed bool
}

func (s *failPromote) Promote(ctx context.Context, uploadID, sum string) error {
	if !s.failed {
		s.failed = true
		return errors.New("injected: storing the photo failed")
	}
	return s.FS.Promote(ctx, uploadID, sum)
}

// TestUploadWithEveryByteCommittedFinishesOnResume: when every byte of an
// upload was committed but the photo was not stored, the phone's resume
// (header with nothing left to send) completes it instead of answering
// "partial" for ever.
func TestUploadWithEveryByteCommittedFinishesOnResume(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 100 << 10})
	ctx := context.Background()
	faulty, err := New(Deps{
		Pool: e.pool, Locator: e.loc,
		Blobs: &failPromote{FS: e.blobs}, Now: e.clock.Now,
	}, Config{SyncEvery: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	data := testJPEG(t, 29.0101, 106.0501, e.clock.Now(), 40<<10)
	h := header(data)
	u, err := faulty.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(ctx, 0, data); err == nil {
		t.Fatal("the injected fault did not fail the last write")
	}
	u.Close(ctx)
	if n := count(t, e.pool, `SELECT count(*) FROM field.uploads WHERE id = $1 AND committed_offset = $2 AND completed_at IS NULL`, h.UploadID, len(data)); n != 1 {
		t.Fatal("the fault did not leave every byte committed and the upload open")
	}
	again, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if st := again.Status(); !st.Complete || st.Photo == nil || st.Photo.SHA256 != h.SHA256 {
		t.Fatalf("resume with nothing left to send: %+v", st)
	}
	again.Close(ctx)
	if n := count(t, e.pool, `SELECT count(*) FROM field.photos WHERE sha256 = $1`, h.SHA256); n != 1 {
		t.Fatal("the photo was not stored")
	}
	rd, err := e.blobs.Open(ctx, h.SHA256)
	if err != nil {
		t.Fatalf("the photo is not in the store: %v", err)
	}
	rd.Close()
}

// TestUploadOverlappingStreamsNeverStoreOtherBytes: a resume that opens
// the partial file while the stream it replaces is still being received
// cuts the file under that stream, which then writes on and commits. The
// length then matches the committed offset but the head is a hole. The
// upload must not finish on such a file: it starts again from 0 (Aborted,
// so the app resumes), and the photo finally stored matches its SHA-256.
func TestUploadOverlappingStreamsNeverStoreOtherBytes(t *testing.T) {
	e := newEnv(t, Config{SyncEvery: 1 << 20})
	ctx := context.Background()
	data := testJPEG(t, 29.0101, 106.0501, e.clock.Now(), 64<<10)
	h := header(data)
	const chunk = 16 << 10
	a, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(ctx, 0, data[:chunk]); err != nil {
		t.Fatal(err)
	}
	// The phone gave up on stream a and resumed from the committed offset
	// (0) while the server was still receiving a.
	b, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(ctx, chunk, data[chunk:2*chunk]); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close(ctx)
	// The next resume starts at a's committed offset and sends the rest.
	c, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	from := int(c.Status().Committed)
	var st UploadStatus
	for off := from; off < len(data); off += chunk {
		st, err = c.Write(ctx, int64(off), data[off:min(off+chunk, len(data))])
		if err != nil {
			break
		}
	}
	c.Close(ctx)
	if structerr.Code(err) != codes.Aborted {
		t.Fatalf("finishing over a damaged partial file: %v (%+v); want Aborted (resume from 0)", err, st)
	}
	// The app asks again and sends everything from 0.
	d, err := e.f.BeginUpload(ctx, inspectorA, h)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Status().Committed; got != 0 {
		t.Fatalf("after the damaged upload the resume starts at %d, want 0", got)
	}
	if st := send(t, d, data, 0, chunk); !st.Complete {
		t.Fatalf("not complete: %+v", st)
	}
	d.Close(ctx)
	rd, err := e.blobs.Open(ctx, h.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("the stored photo does not match its SHA-256")
	}
}
