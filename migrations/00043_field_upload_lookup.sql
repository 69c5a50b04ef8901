-- Field: GetUploadStatus and an upload header without upload_id find the
-- uploader's upload of a photo by its hash (and report), whatever id the
-- upload was started with (issue 14).

-- +goose Up
CREATE INDEX uploads_uploader_sha256 ON field.uploads (uploader_id, sha256);

-- +goose Down
DROP INDEX field.uploads_uploader_sha256;
