-- Webhook subscribers that take events in batches (issue 16): up to
-- max_batch case events per POST as one ecogrid.events.v1.CaseEventBatch;
-- 1 is one CaseEvent per POST.

-- +goose Up
ALTER TABLE webhooks.subscribers
    ADD COLUMN max_batch integer NOT NULL DEFAULT 1 CHECK (max_batch BETWEEN 1 AND 500);

-- +goose Down
ALTER TABLE webhooks.subscribers DROP COLUMN max_batch;
