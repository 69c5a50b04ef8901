package fieldsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// chinaTime is the zone phone cameras write EXIF times in.
var chinaTime = time.FixedZone("CST", 8*3600)

// photoFile is a photo taken on the phone, waiting to be uploaded.
type photoFile struct {
	data     []byte
	sha      string
	uploadID string
	tried    bool // an upload was started: resume it, never begin again
	uploaded bool // the server said complete
}

var (
	baseOnce sync.Once
	baseJPEG []byte
)

// base is a small real JPEG; every photo is it plus its own EXIF block
// and some trailing bytes (viewers ignore them), so each has its own hash.
func base() []byte {
	baseOnce.Do(func() {
		img := image.NewRGBA(image.Rect(0, 0, 160, 120))
		for y := range 120 {
			for x := range 160 {
				img.Set(x, y, color.RGBA{uint8(x), uint8(y * 2), 90, 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
			panic(err)
		}
		baseJPEG = buf.Bytes()
	})
	return baseJPEG
}

// takePhoto makes a JPEG with EXIF GPS position (WGS-84, as camera chips
// write it) and capture time.
func takePhoto(r *rand.Rand, lat, lon float64, taken time.Time) (*photoFile, error) {
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		return nil, err
	}
	ib := exif.NewIfdBuilder(im, exif.NewTagIndex(), exifcommon.IfdStandardIfdIdentity, binary.BigEndian)
	eib, err := exif.GetOrCreateIbFromRootIb(ib, "IFD/Exif")
	if err != nil {
		return nil, err
	}
	if err := eib.SetStandardWithName("DateTimeOriginal", taken.In(chinaTime).Format("2006:01:02 15:04:05")); err != nil {
		return nil, err
	}
	gib, err := exif.GetOrCreateIbFromRootIb(ib, "IFD/GPSInfo")
	if err != nil {
		return nil, err
	}
	dms := func(v float64) []exifcommon.Rational {
		d := math.Floor(v)
		m := math.Floor((v - d) * 60)
		s := (v - d - m/60) * 3600
		return []exifcommon.Rational{{Numerator: uint32(d), Denominator: 1}, {Numerator: uint32(m), Denominator: 1},
			{Numerator: uint32(math.Round(s * 10000)), Denominator: 10000}}
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"GPSVersionID", []byte{2, 2, 0, 0}}, {"GPSLatitudeRef", "N"}, {"GPSLatitude", dms(lat)},
		{"GPSLongitudeRef", "E"}, {"GPSLongitude", dms(lon)}} {
		if err := gib.SetStandardWithName(kv.k, kv.v); err != nil {
			return nil, fmt.Errorf("exif %s: %w", kv.k, err)
		}
	}
	tiff, err := exif.NewIfdByteEncoder().EncodeToExif(ib)
	if err != nil {
		return nil, err
	}
	b := base()
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := make([]byte, 0, len(b)+len(seg)+64<<10)
	out = append(out, 0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg)+2)>>8), byte(len(seg)+2))
	out = append(out, seg...)
	out = append(out, b[2:]...)
	pad := make([]byte, 8<<10+r.IntN(48<<10))
	for i := range pad {
		pad[i] = byte(r.Uint32())
	}
	out = append(out, pad...)
	sum := sha256.Sum256(out)
	return &photoFile{data: out, sha: hex.EncodeToString(sum[:]), uploadID: uuidFrom(r)}, nil
}

// uuidFrom draws a random (version 4) UUID from r, so runs are repeatable
// from their seed.
func uuidFrom(r *rand.Rand) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b).String()
}

const uploadChunk = 16 << 10

var errIncomplete = status.Error(codes.Unavailable, "upload stream ended before the photo was complete")

// upload sends a photo as a resumable stream under its upload id. When
// drop is set the first stream is cut after one chunk, as a phone losing
// its signal would; every later attempt asks GetUploadStatus where to
// resume and sends only the rest.
func (s *Sim) upload(ctx context.Context, sess *session, p *photoFile, reportID string, drop bool) error {
	if p.uploaded {
		return nil
	}
	resumes := 0
	err := s.do(ctx, sess, "FieldService/UploadPhoto", func(ctx context.Context) error {
		err := s.uploadAttempt(ctx, p, reportID, drop)
		if status.Code(err) == codes.FailedPrecondition && p.tried && resumes < 3 {
			// The dropped stream may still have been closing on the
			// server when the status was asked (complete, or further
			// along): ask again and resume from there.
			resumes++
			if st, serr := s.field.GetUploadStatus(ctx, &ecogridv1.GetUploadStatusRequest{UploadId: p.uploadID}); serr == nil &&
				st.GetState() == ecogridv1.UploadState_UPLOAD_STATE_COMPLETE && st.GetPhoto().GetSha256() == p.sha {
				return nil
			}
			return &retryErr{err}
		}
		return err
	})
	if err != nil {
		return err
	}
	p.uploaded = true
	s.acks.photo(p.sha, ackPhoto{size: int64(len(p.data)), by: sess})
	s.work.Photos.Add(1)
	return nil
}

// uploadAttempt is one try: ask where to resume (after the first), then
// stream the header and the missing chunks.
func (s *Sim) uploadAttempt(ctx context.Context, p *photoFile, reportID string, drop bool) error {
	from := int64(0)
	if p.tried {
		st, err := s.field.GetUploadStatus(ctx, &ecogridv1.GetUploadStatusRequest{UploadId: p.uploadID})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		case st.GetState() == ecogridv1.UploadState_UPLOAD_STATE_COMPLETE:
			return nil
		default:
			from = st.GetCommittedOffset()
			s.work.UploadsResumed.Add(1)
		}
	}
	cut := !p.tried && drop
	p.tried = true
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.field.UploadPhoto(sctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Header{Header: &ecogridv1.PhotoUploadHeader{
		UploadId: p.uploadID, ReportId: reportID, Size: int64(len(p.data)), Sha256: p.sha, ContentType: "image/jpeg",
	}}}); err != nil {
		return recvErr(stream, err)
	}
	for off := from; off < int64(len(p.data)); off += uploadChunk {
		end := min(off+uploadChunk, int64(len(p.data)))
		if err := stream.Send(&ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Chunk{Chunk: &ecogridv1.PhotoChunk{
			Offset: off, Data: p.data[off:end],
		}}}); err != nil {
			return recvErr(stream, err)
		}
		if cut {
			// Give the chunk a moment to reach the server, then drop the line.
			time.Sleep(20 * time.Millisecond)
			cancel()
			return errDropped
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.GetState() != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE {
		return errIncomplete
	}
	if got := resp.GetPhoto().GetSha256(); got != p.sha {
		return status.Errorf(codes.DataLoss, "server stored photo %s as %s", p.sha, got)
	}
	return nil
}

// recvErr returns the server's status when a Send failed because the
// server ended the stream (Send only says io.EOF then).
func recvErr(stream interface {
	CloseAndRecv() (*ecogridv1.UploadPhotoResponse, error)
}, sendErr error) error {
	if _, err := stream.CloseAndRecv(); err != nil {
		return err
	}
	if errors.Is(sendErr, context.Canceled) {
		return errIncomplete
	}
	return sendErr
}
