-- Auth: remember which refresh token replaced which, so that a phone that
-- lost the answer to a refresh on a flaky network may retry with the same
-- token for a short grace period instead of being logged out (see
-- internal/auth rotateRefresh).

-- +goose Up
ALTER TABLE auth.refresh_tokens ADD COLUMN replaced_by bytea CHECK (replaced_by IS NULL OR length(replaced_by) = 32);

-- +goose Down
ALTER TABLE auth.refresh_tokens DROP COLUMN replaced_by;
