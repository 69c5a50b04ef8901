-- Webhook subscribers managed over gRPC (issue 16): a subscriber is
-- disabled rather than deleted, so its delivery log stays; a replay is a
-- request in the row (replay_generation) that the dispatcher applies and
-- acknowledges (replayed_generation), whichever process asked for it.

-- +goose Up
ALTER TABLE webhooks.subscribers
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN replay_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN replayed_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN created_by uuid;

-- +goose Down
ALTER TABLE webhooks.subscribers
    DROP COLUMN created_by,
    DROP COLUMN replayed_generation,
    DROP COLUMN replay_generation,
    DROP COLUMN disabled_at;
