package field

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/field/photo"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// UploadHeader opens or resumes an upload.
type UploadHeader struct {
	UploadID    string
	ReportID    string
	Size        int64
	SHA256      string
	ContentType string
}

// UploadStatus says where an upload is.
type UploadStatus struct {
	UploadID     string
	Size         int64
	Committed    int64 // bytes durably stored: resume from here
	Complete     bool
	Photo        *PhotoMeta
	ExifMismatch bool
}

// uploadNamespace derives upload ids for headers without one.
var uploadNamespace = uuid.MustParse("6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11")

// checkHeader validates and normalises h; a header without upload id gets
// the id derived from the uploader, report and hash (uploadKey).
func (ph *Photos) checkHeader(h *UploadHeader, uploader string) error {
	h.SHA256 = strings.ToLower(h.SHA256)
	if !sha256Hex.MatchString(h.SHA256) {
		return structerr.NewInvalidArgument("sha256 must be the file's SHA-256 in hex")
	}
	if h.ReportID != "" {
		if _, err := checkUUID("report_id", h.ReportID); err != nil {
			return err
		}
		h.ReportID = strings.ToLower(h.ReportID)
	}
	id, err := uploadKey(h.UploadID, h.ReportID, h.SHA256, uploader)
	if err != nil {
		return err
	}
	h.UploadID = id
	if h.Size <= 0 {
		return structerr.NewInvalidArgument("size must be the file's size in bytes")
	}
	if h.Size > ph.cfg.MaxPhotoBytes {
		return structerr.NewResourceExhausted("the photo has %d bytes, at most %d are allowed", h.Size, ph.cfg.MaxPhotoBytes)
	}
	t, ok := photo.ParseType(h.ContentType)
	if !ok {
		return structerr.NewInvalidArgument("content type %.40q is not image/jpeg, image/png, image/webp or image/heic", h.ContentType)
	}
	h.ContentType = string(t)
	return nil
}

// Upload is one photo upload in progress on one stream. It holds at most
// one chunk in memory, the SHA-256 state and a few header bytes.
type Upload struct {
	ph        *Photos
	caller    scope.Caller
	h         UploadHeader
	file      blob.Partial
	hash      hash.Hash
	offset    int64 // bytes written to the file
	committed int64 // bytes durable and recorded in the database
	done      bool
	status    UploadStatus
}

// BeginUpload opens an upload or resumes it from its committed offset. A
// photo already stored (the same bytes sent before, by anyone) completes
// at once without any byte being sent again.
func (ph *Photos) BeginUpload(ctx context.Context, c scope.Caller, h UploadHeader) (*Upload, error) {
	if c.PersonID == "" {
		return nil, structerr.NewUnauthenticated("no caller")
	}
	derived := h.UploadID == ""
	if err := ph.checkHeader(&h, c.PersonID); err != nil {
		return nil, err
	}
	if derived {
		// The app did not name the upload: resume the one this person
		// started for the same photo (and report), whatever id it was
		// started with, so a retry without the id neither doubles it nor
		// starts over.
		row, err := findUpload(ctx, ph.pool, c.PersonID, h.ReportID, h.SHA256)
		switch {
		case err == nil && row.Size == h.Size && row.ContentType == h.ContentType:
			h.UploadID = row.ID
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
	}
	if h.ReportID != "" {
		r, _, err := getReport(ctx, ph.pool, h.ReportID)
		if err == nil && !canSee(c, r) {
			return nil, structerr.NewNotFound("report %s not found", h.ReportID)
		} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
	}
	row, err := getOrCreateUpload(ctx, ph.pool, h, c.PersonID)
	if err != nil {
		return nil, err
	}
	if row.UploaderID != c.PersonID {
		return nil, structerr.NewNotFound("upload %s not found", h.UploadID)
	}
	if row.SHA256 != h.SHA256 || row.Size != h.Size || row.ContentType != h.ContentType {
		return nil, structerr.NewAlreadyExists("upload %s was started for a different file", h.UploadID)
	}
	u := &Upload{ph: ph, caller: c, h: h, offset: row.Committed, committed: row.Committed}
	if row.Complete {
		u.done = true
		u.status, err = ph.uploadStatus(ctx, row)
		return u, err
	}
	// Stored already: by another upload, or by this one before a crash
	// between moving the file into place and recording it.
	if done, err := ph.completeFromStore(ctx, u); done || err != nil {
		return u, err
	}
	file, have, err := ph.blobs.OpenPartial(ctx, h.UploadID, row.Committed)
	if err != nil {
		return nil, fmt.Errorf("opening partial upload: %w", err)
	}
	u.file = file
	u.hash = sha256.New()
	if have < row.Committed || row.HashState == nil {
		// The partial file lost data (disk replaced, janitor): start over.
		if err := file.Close(); err != nil {
			return nil, err
		}
		if u.file, _, err = ph.blobs.OpenPartial(ctx, h.UploadID, 0); err != nil {
			return nil, err
		}
		if err := setCommitted(ctx, ph.pool, h.UploadID, row.Committed, 0, nil); err != nil {
			return nil, err
		}
		u.offset, u.committed = 0, 0
	} else if err := u.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(row.HashState); err != nil {
		return nil, fmt.Errorf("restoring upload hash state: %w", err)
	}
	u.status = UploadStatus{UploadID: h.UploadID, Size: h.Size, Committed: u.committed}
	if u.offset == h.Size {
		// Every byte is durable but the photo was not stored: the stream
		// that sent the last chunk ended (cut, or the process stopped)
		// between the commit and storing it. The app has nothing left to
		// send, so finish now rather than answer "partial" for ever.
		if _, err := u.finish(ctx); err != nil {
			u.Close(ctx)
			return nil, err
		}
	}
	return u, nil
}

// completeFromStore finishes u without data when its photo is known.
func (ph *Photos) completeFromStore(ctx context.Context, u *Upload) (bool, error) {
	photos, err := getPhotos(ctx, ph.pool, []string{u.h.SHA256})
	if err != nil {
		return false, err
	}
	var meta PhotoMeta
	switch {
	case len(photos) == 1:
		meta = photos[0]
		if meta.ContentType != u.h.ContentType || meta.Size != u.h.Size {
			return false, structerr.NewInvalidArgument("this SHA-256 is stored as a %s of %d bytes", meta.ContentType, meta.Size)
		}
	default:
		if _, err := ph.blobs.Stat(ctx, u.h.SHA256); errors.Is(err, blob.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		r, err := ph.blobs.Open(ctx, u.h.SHA256)
		if err != nil {
			return false, err
		}
		meta, err = ph.inspect(r, u.h)
		r.Close()
		if err != nil {
			return false, err
		}
	}
	// This upload delivered the bytes itself when it had committed all of
	// them (finish records that before moving the file into the store);
	// otherwise whoever sent them, it was not shown to be this upload.
	sentHere := u.committed == u.h.Size
	if err := ph.recordPhoto(ctx, u, meta, !sentHere); err != nil {
		return false, err
	}
	return true, nil
}

// Status returns where the upload is.
func (u *Upload) Status() UploadStatus { return u.status }

// Write stores one chunk. Chunks must come in order from the committed
// offset; the last one completes the upload when the whole file's SHA-256
// matches.
func (u *Upload) Write(ctx context.Context, offset int64, data []byte) (UploadStatus, error) {
	if u.done {
		return u.status, structerr.NewFailedPrecondition("upload %s is already complete", u.h.UploadID)
	}
	if len(data) == 0 {
		return u.status, structerr.NewInvalidArgument("empty chunk")
	}
	if len(data) > u.ph.cfg.MaxChunkBytes {
		return u.status, structerr.NewInvalidArgument("chunk of %d bytes, at most %d are allowed", len(data), u.ph.cfg.MaxChunkBytes)
	}
	if offset != u.offset {
		return u.status, structerr.NewFailedPrecondition("chunk at offset %d, expected offset %d", offset, u.offset)
	}
	if offset+int64(len(data)) > u.h.Size {
		return u.status, structerr.NewInvalidArgument("chunk ends at byte %d, past the declared size %d", offset+int64(len(data)), u.h.Size)
	}
	if offset == 0 {
		// Refuse a file that is not what it claims before storing any of it.
		t, err := photo.Sniff(data[:min(len(data), photo.SniffLen)])
		if err != nil && (len(data) >= photo.SniffLen || int64(len(data)) == u.h.Size) {
			u.reset(ctx)
			return u.status, structerr.NewInvalidArgument("%v", err)
		}
		if err == nil && string(t) != u.h.ContentType {
			u.reset(ctx)
			return u.status, structerr.NewInvalidArgument("the file is a %s, not the %s it claims", t, u.h.ContentType)
		}
	}
	if _, err := u.file.WriteAt(data, offset); err != nil {
		return u.status, fmt.Errorf("writing upload: %w", err)
	}
	u.hash.Write(data)
	u.offset += int64(len(data))
	u.ph.metrics.uploadBytes.Add(float64(len(data)))
	if u.offset == u.h.Size {
		return u.finish(ctx)
	}
	if u.offset-u.committed >= u.ph.cfg.SyncEvery {
		if err := u.commit(ctx); err != nil {
			return u.status, err
		}
	}
	return u.status, nil
}

// commit makes the bytes written so far durable and records the offset.
func (u *Upload) commit(ctx context.Context) error {
	if u.offset == u.committed || u.file == nil {
		return nil
	}
	if err := u.file.Sync(); err != nil {
		return fmt.Errorf("syncing upload: %w", err)
	}
	state, err := u.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if err := setCommitted(ctx, u.ph.pool, u.h.UploadID, u.committed, u.offset, state); err != nil {
		return err
	}
	u.committed = u.offset
	u.status.Committed = u.offset
	return nil
}

// Close keeps what the stream delivered (a dropped connection resumes from
// here) and releases the file. It is safe to call more than once.
func (u *Upload) Close(ctx context.Context) error {
	if u.file == nil {
		return nil
	}
	var err error
	if !u.done {
		err = u.commit(context.WithoutCancel(ctx))
	}
	if cerr := u.file.Close(); err == nil {
		err = cerr
	}
	u.file = nil
	return err
}

// reset throws away a bad file so that the app can send it again from 0.
func (u *Upload) reset(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	u.ph.metrics.uploads.WithLabelValues("refused").Inc()
	if u.file != nil {
		u.file.Close()
		u.file = nil
	}
	if err := u.ph.blobs.RemovePartial(ctx, u.h.UploadID); err != nil {
		u.ph.log.ErrorContext(ctx, "removing refused upload", "upload_id", u.h.UploadID, "error", err)
	}
	if err := deleteUpload(ctx, u.ph.pool, u.h.UploadID); err != nil {
		u.ph.log.ErrorContext(ctx, "deleting refused upload", "upload_id", u.h.UploadID, "error", err)
	}
	u.done = true
}

func (u *Upload) finish(ctx context.Context) (UploadStatus, error) {
	if got := hex.EncodeToString(u.hash.Sum(nil)); got != u.h.SHA256 {
		u.reset(ctx)
		return u.status, structerr.NewInvalidArgument("the file's SHA-256 is %s, not the declared %s: send it again from offset 0", got, u.h.SHA256)
	}
	// The hash above is of the bytes this stream and its committed
	// predecessors received; what is stored is the file. A stream that
	// overlapped another (a phone resuming while the server still received
	// the stream it gave up on) can leave the file with the right length
	// but other bytes. Store nothing that does not hash right: start over.
	if ok, err := u.fileMatches(); err != nil {
		return u.status, err
	} else if !ok {
		u.reset(ctx)
		return u.status, structerr.NewAborted("upload %s was changed by another connection while it was received: send the photo again from offset 0", u.h.UploadID)
	}
	meta, err := u.ph.inspect(u.file, u.h)
	if err != nil {
		if structerr.Code(err) == structerr.Code(structerr.NewInvalidArgument("")) ||
			structerr.Code(err) == structerr.Code(structerr.NewResourceExhausted("")) {
			u.reset(ctx)
		}
		return u.status, err
	}
	// Record that this upload delivered every byte before the file moves
	// into the store (commit fsyncs the file first; bytes committed
	// earlier were fsynced then): if the process or the database dies between the move
	// and recordPhoto, the resumed upload still counts as this uploader's
	// own bytes (not a deduplicated claim) and they may read their photo.
	if err := u.commit(ctx); err != nil {
		return u.status, err
	}
	if err := u.file.Close(); err != nil {
		return u.status, err
	}
	u.file = nil
	if err := u.ph.blobs.Promote(ctx, u.h.UploadID, u.h.SHA256); err != nil {
		return u.status, fmt.Errorf("storing photo: %w", err)
	}
	if err := u.ph.recordPhoto(ctx, u, meta, false); err != nil {
		return u.status, err
	}
	return u.status, nil
}

// fileMatches reports whether the partial file holds exactly the declared
// size and SHA-256.
func (u *Upload) fileMatches() (bool, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(u.file, 0, u.h.Size)); err != nil {
		return false, fmt.Errorf("reading upload back: %w", err)
	}
	var extra [1]byte
	if n, _ := u.file.ReadAt(extra[:], u.h.Size); n != 0 {
		return false, nil
	}
	return hex.EncodeToString(h.Sum(nil)) == u.h.SHA256, nil
}

// inspect checks a complete file's type and size from its header.
func (ph *Photos) inspect(r interface {
	ReadAt(p []byte, off int64) (int, error)
}, h UploadHeader) (PhotoMeta, error) {
	info, err := photo.Inspect(r, h.Size, photo.Limits{MaxPixels: ph.cfg.MaxPhotoPixels, MaxExifBytes: ph.cfg.MaxExifBytes})
	var p *photo.Problem
	if errors.As(err, &p) {
		if p.TooLarge {
			return PhotoMeta{}, structerr.NewResourceExhausted("%s", p.Msg)
		}
		return PhotoMeta{}, structerr.NewInvalidArgument("%s", p.Msg)
	}
	if err != nil {
		return PhotoMeta{}, fmt.Errorf("reading photo header: %w", err)
	}
	if string(info.Type) != h.ContentType {
		return PhotoMeta{}, structerr.NewInvalidArgument("the file is a %s, not the %s it claims", info.Type, h.ContentType)
	}
	return PhotoMeta{
		SHA256: h.SHA256, Size: h.Size, ContentType: h.ContentType, Width: info.Width, Height: info.Height,
		ExifLat: info.Exif.Lat, ExifLon: info.Exif.Lon, ExifTime: info.Exif.Time,
	}, nil
}

// recordPhoto stores the photo's metadata, completes the upload and
// compares the photo with every report that references it. deduplicated
// says the upload completed without its bytes (the photo was stored).
func (ph *Photos) recordPhoto(ctx context.Context, u *Upload, meta PhotoMeta, deduplicated bool) error {
	mismatch := false
	err := database.InTx(ctx, ph.pool, func(tx pgx.Tx) error {
		mismatch = false
		if err := insertPhoto(ctx, tx, meta, u.caller.PersonID); err != nil {
			return err
		}
		if err := completeUpload(ctx, tx, u.h.UploadID, u.h.Size, deduplicated); err != nil {
			return err
		}
		reports, err := reportsWithPhoto(ctx, tx, u.h.SHA256, u.h.ReportID)
		if err != nil {
			return err
		}
		for _, r := range reports {
			// Only reports whose reporter sent these bytes (see linkPhotos).
			if own, err := uploadedByAny(ctx, tx, meta.SHA256, []string{r.ReporterID}); err != nil {
				return err
			} else if !own {
				continue
			}
			m := ph.cfg.compareExif(meta, r.Lat, r.Lon, r.ObservedAt)
			if err := upsertReportPhoto(ctx, tx, r.ID, meta.SHA256, m); err != nil {
				return err
			}
			mismatch = mismatch || m.Mismatch
			if m.Mismatch {
				ph.metrics.exifMismatch.Inc()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	outcome := "stored"
	if deduplicated {
		outcome = "deduplicated"
	}
	ph.metrics.uploads.WithLabelValues(outcome).Inc()
	u.done = true
	u.offset, u.committed = u.h.Size, u.h.Size
	u.status = UploadStatus{UploadID: u.h.UploadID, Size: u.h.Size, Committed: u.h.Size, Complete: true, Photo: &meta, ExifMismatch: mismatch}
	return nil
}

func (ph *Photos) uploadStatus(ctx context.Context, row uploadRow) (UploadStatus, error) {
	st := UploadStatus{UploadID: row.ID, Size: row.Size, Committed: row.Committed, Complete: row.Complete}
	if row.Complete {
		photos, err := getPhotos(ctx, ph.pool, []string{row.SHA256})
		if err != nil {
			return st, err
		}
		if len(photos) == 1 {
			st.Photo = &photos[0]
		}
	}
	return st, nil
}

// UploadStatus tells a reconnecting app where to resume. The upload is
// named by its id, or by its report and/or SHA-256 — whichever way it was
// started: an upload started with an id is found by its report and hash,
// and one started without an id by the id its response gave (issue 14).
func (ph *Photos) UploadStatus(ctx context.Context, c scope.Caller, uploadID, reportID, sum string) (UploadStatus, error) {
	if uploadID != "" {
		id, err := checkUUID("upload_id", uploadID)
		if err != nil {
			return UploadStatus{}, err
		}
		uploadID = id.String()
	}
	if reportID != "" {
		id, err := checkUUID("report_id", reportID)
		if err != nil {
			return UploadStatus{}, err
		}
		reportID = id.String()
	}
	sum = strings.ToLower(sum)
	if sum != "" && !sha256Hex.MatchString(sum) {
		return UploadStatus{}, structerr.NewInvalidArgument("sha256 must be the file's SHA-256 in hex")
	}
	if uploadID == "" && reportID == "" && sum == "" {
		return UploadStatus{}, structerr.NewInvalidArgument("give an upload_id, a report_id or a sha256")
	}
	notFound := structerr.NewNotFound("upload not found")
	if uploadID != "" {
		row, err := getUpload(ctx, ph.pool, uploadID)
		switch {
		case err == nil && row.UploaderID == c.PersonID:
			return ph.uploadStatus(ctx, row)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return UploadStatus{}, err
		case reportID == "" && sum == "":
			return UploadStatus{}, structerr.NewNotFound("upload %s not found", uploadID)
		}
	}
	row, err := findUpload(ctx, ph.pool, c.PersonID, reportID, sum)
	if errors.Is(err, pgx.ErrNoRows) {
		return UploadStatus{}, notFound
	}
	if err != nil {
		return UploadStatus{}, err
	}
	return ph.uploadStatus(ctx, row)
}

// uploadKey names an upload: by its id when the app gave one, else by an
// id derived from the report and SHA-256 (as before issue 14, so uploads
// begun by older apps keep their ids) or, without a report, from the
// uploader and SHA-256. The same photo sent again by the same person gets
// the same id, which keeps an upload without id idempotent.
func uploadKey(uploadID, reportID, sum, uploader string) (string, error) {
	if uploadID != "" {
		id, err := checkUUID("upload_id", uploadID)
		return id.String(), err
	}
	sum = strings.ToLower(sum)
	if !sha256Hex.MatchString(sum) {
		return "", structerr.NewInvalidArgument("sha256 must be the file's SHA-256 in hex")
	}
	if reportID != "" {
		id, err := checkUUID("report_id", reportID)
		if err != nil {
			return "", err
		}
		return uuid.NewSHA1(uploadNamespace, []byte(id.String()+"/"+sum)).String(), nil
	}
	if uploader == "" {
		return "", structerr.NewUnauthenticated("no caller")
	}
	return uuid.NewSHA1(uploadNamespace, []byte("uploader/"+uploader+"/"+sum)).String(), nil
}

// OpenPhoto returns a stored photo for a caller who uploaded it, may see
// a report that references it, or whose scope covers a case the photo is
// evidence of; anyone else gets NotFound.
func (ph *Photos) OpenPhoto(ctx context.Context, c scope.Caller, sum string) (PhotoMeta, blob.Reader, error) {
	sum = strings.ToLower(sum)
	if !sha256Hex.MatchString(sum) {
		return PhotoMeta{}, nil, structerr.NewInvalidArgument("sha256 must be a SHA-256 in hex")
	}
	notFound := structerr.NewNotFound("photo %s not found", sum)
	photos, err := getPhotos(ctx, ph.pool, []string{sum})
	if err != nil {
		return PhotoMeta{}, nil, err
	}
	if len(photos) == 0 {
		return PhotoMeta{}, nil, notFound
	}
	// Visible to whoever sent its bytes, and to whoever may see a report
	// that references it and whose reporter sent them: referencing a hash
	// in one's own report must not open someone else's photo.
	people := []string{c.PersonID}
	reports, err := reportsWithPhoto(ctx, ph.pool, sum, "")
	if err != nil {
		return PhotoMeta{}, nil, err
	}
	for _, r := range reports {
		if canSee(c, r) && !slices.Contains(people, r.ReporterID) {
			people = append(people, r.ReporterID)
		}
	}
	ok, err := uploadedByAny(ctx, ph.pool, sum, people)
	if err != nil {
		return PhotoMeta{}, nil, err
	}
	ok = ok || slices.Contains(c.Roots(), "") // administrators read everything
	if !ok {
		// A photo linked to a case as evidence is the case's: whoever's
		// scope covers the case's node may download it (LinkEvidence
		// checked it was real evidence when it was linked).
		if ok, err = evidenceVisible(ctx, ph.pool, c, sum); err != nil {
			return PhotoMeta{}, nil, err
		}
	}
	if !ok {
		return PhotoMeta{}, nil, notFound
	}
	r, err := ph.blobs.Open(ctx, sum)
	if errors.Is(err, blob.ErrNotFound) {
		ph.log.ErrorContext(ctx, "photo recorded but missing from the blob store", "sha256", sum)
		return PhotoMeta{}, nil, structerr.NewInternal("photo %s is missing from storage", sum)
	}
	if err != nil {
		return PhotoMeta{}, nil, err
	}
	return photos[0], r, nil
}

// CleanAbandonedUploads removes uploads unfinished for longer than the
// configured age, with their partial files, and partial files that no
// upload row knows. It returns how many uploads it removed.
func (ph *Photos) CleanAbandonedUploads(ctx context.Context) (int, error) {
	cutoff := ph.now().Add(-ph.cfg.AbandonedUploadAge)
	ids, err := deleteAbandonedUploads(ctx, ph.pool, cutoff)
	if err != nil {
		return 0, err
	}
	ph.metrics.janitorPurged.Add(float64(len(ids)))
	for _, id := range ids {
		if err := ph.blobs.RemovePartial(ctx, id); err != nil {
			return len(ids), err
		}
	}
	files, err := ph.blobs.Partials(ctx, cutoff)
	if err != nil {
		return len(ids), err
	}
	for _, id := range files {
		if _, err := getUpload(ctx, ph.pool, id); errors.Is(err, pgx.ErrNoRows) {
			if err := ph.blobs.RemovePartial(ctx, id); err != nil {
				return len(ids), err
			}
		}
	}
	return len(ids), nil
}

// RunJanitor cleans abandoned uploads every interval until ctx ends.
func (ph *Photos) RunJanitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := ph.CleanAbandonedUploads(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			ph.log.ErrorContext(ctx, "cleaning abandoned uploads", "error", err)
		case n > 0:
			ph.log.InfoContext(ctx, "removed abandoned uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
