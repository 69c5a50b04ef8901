-- Field: an upload completed without receiving the bytes (the photo was
-- stored already) is marked deduplicated: knowing a hash does not prove
-- holding the photo, so such an upload grants no right to download it.
-- (This column first went into 00040 after that migration had run on
-- development databases; IF NOT EXISTS serves those as well.)

-- +goose Up
ALTER TABLE field.uploads ADD COLUMN IF NOT EXISTS deduplicated boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE field.uploads DROP COLUMN IF EXISTS deduplicated;
