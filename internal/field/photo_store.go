package field

import (
	"context"
	"crypto/sha256"
	"encoding"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

type uploadRow struct {
	ID          string
	UploaderID  string
	ReportID    string
	SHA256      string
	Size        int64
	ContentType string
	Committed   int64
	HashState   []byte
	Complete    bool
}

const uploadColumns = `id::text, uploader_id, coalesce(report_id::text, ''), sha256, size, content_type,
	committed_offset, hash_state, completed_at IS NOT NULL`

func scanUpload(row pgx.Row) (uploadRow, error) {
	var u uploadRow
	err := row.Scan(&u.ID, &u.UploaderID, &u.ReportID, &u.SHA256, &u.Size, &u.ContentType, &u.Committed, &u.HashState, &u.Complete)
	return u, err
}

func getUpload(ctx context.Context, q database.Querier, id string) (uploadRow, error) {
	return scanUpload(q.QueryRow(ctx, `SELECT `+uploadColumns+` FROM field.uploads WHERE id = $1`, id))
}

// findUpload returns the uploader's latest upload of the photo sum (any
// when empty) for the report (any when empty), completed ones first.
func findUpload(ctx context.Context, q database.Querier, uploader, reportID, sum string) (uploadRow, error) {
	return scanUpload(q.QueryRow(ctx, `SELECT `+uploadColumns+` FROM field.uploads
		WHERE uploader_id = $1 AND ($2 = '' OR report_id = nullif($2, '')::uuid) AND ($3 = '' OR sha256 = $3)
		ORDER BY completed_at IS NOT NULL DESC, updated_at DESC LIMIT 1`, uploader, reportID, sum))
}

// getOrCreateUpload returns the upload row, creating it for a new id.
func getOrCreateUpload(ctx context.Context, q database.Querier, h UploadHeader, uploader string) (uploadRow, error) {
	_, err := q.Exec(ctx, `INSERT INTO field.uploads (id, uploader_id, report_id, sha256, size, content_type, hash_state)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		h.UploadID, uploader, nullText(h.ReportID), h.SHA256, h.Size, h.ContentType, emptyHashState())
	if err != nil {
		return uploadRow{}, err
	}
	return getUpload(ctx, q, h.UploadID)
}

// setCommitted moves the committed offset from old to next; another stream
// that moved it meanwhile makes this one stop with Aborted.
func setCommitted(ctx context.Context, q database.Querier, id string, old, next int64, state []byte) error {
	if state == nil {
		state = emptyHashState()
	}
	tag, err := q.Exec(ctx, `UPDATE field.uploads SET committed_offset = $3, hash_state = $4, updated_at = now()
		WHERE id = $1 AND committed_offset = $2 AND completed_at IS NULL`, id, old, next, state)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return structerr.NewAborted("upload %s was continued on another connection: ask for its status and resume", id)
	}
	return nil
}

func deleteUpload(ctx context.Context, q database.Querier, id string) error {
	_, err := q.Exec(ctx, `DELETE FROM field.uploads WHERE id = $1 AND completed_at IS NULL`, id)
	return err
}

func completeUpload(ctx context.Context, q database.Querier, id string, size int64, deduplicated bool) error {
	_, err := q.Exec(ctx, `UPDATE field.uploads SET committed_offset = $2, hash_state = NULL, deduplicated = $3,
		completed_at = coalesce(completed_at, now()), updated_at = now() WHERE id = $1 AND completed_at IS NULL`, id, size, deduplicated)
	return err
}

func insertPhoto(ctx context.Context, q database.Querier, p PhotoMeta, by string) error {
	_, err := q.Exec(ctx, `INSERT INTO field.photos (sha256, size, content_type, width, height, exif_lat, exif_lon, exif_time, uploaded_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sha256) DO NOTHING`,
		p.SHA256, p.Size, p.ContentType, p.Width, p.Height, p.ExifLat, p.ExifLon, p.ExifTime, by)
	return err
}

// reportsWithPhoto returns the reports that reference sum, plus reportID.
func reportsWithPhoto(ctx context.Context, q database.Querier, sum, reportID string) ([]Report, error) {
	var rid *string
	if reportID != "" {
		rid = &reportID
	}
	rows, err := q.Query(ctx, `SELECT `+reportColumns+` FROM field.reports r
		WHERE r.photo_sha256 @> ARRAY[$1]::text[] OR r.id = $2::uuid ORDER BY r.received_at LIMIT 100`, sum, rid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		r, _, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// uploadedByAny reports whether one of people sent the bytes of photo sum.
func uploadedByAny(ctx context.Context, q database.Querier, sum string, people []string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM field.uploads WHERE sha256 = $1 AND uploader_id = ANY($2)
		AND completed_at IS NOT NULL AND NOT deduplicated)`, sum, people).Scan(&ok)
	return ok, err
}

func deleteAbandonedUploads(ctx context.Context, q database.Querier, before time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `DELETE FROM field.uploads WHERE completed_at IS NULL AND updated_at < $1 RETURNING id::text`, before)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// emptyHashState is the marshalled SHA-256 state of zero bytes.
func emptyHashState() []byte {
	b, _ := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	return b
}
