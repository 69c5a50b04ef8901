-- Webhook subscribers of departments' own systems, and the delivery log
-- that makes a delivery happen once per subscriber (issue 16).

-- +goose Up
CREATE SCHEMA webhooks;

CREATE TABLE webhooks.subscribers (
    subscriber_id uuid PRIMARY KEY,
    county_code   text NOT NULL,
    url           text NOT NULL CHECK (url ~ '^https?://'),
    secret        text NOT NULL CHECK (length(secret) >= 16),
    -- case event types (opened, accepted …) to deliver; empty means all
    event_types   text[] NOT NULL DEFAULT '{}',
    -- deliver protojson instead of binary protobuf
    json          boolean NOT NULL DEFAULT false,
    -- deliveries start at events published from this instant (moved back by a replay)
    start_at      timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscribers_county ON webhooks.subscribers (county_code);

-- One row per event delivered to a subscriber, written before the
-- JetStream message is acknowledged: an event redelivered after a crash
-- is skipped for the subscribers that already have it.
CREATE TABLE webhooks.deliveries (
    event_id      uuid NOT NULL,
    subscriber_id uuid NOT NULL REFERENCES webhooks.subscribers ON DELETE CASCADE,
    case_id       text NOT NULL,
    event_type    text NOT NULL,
    stream_seq    bigint NOT NULL,
    published_at  timestamptz NOT NULL,
    attempts      integer NOT NULL,
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, subscriber_id)
);
CREATE INDEX deliveries_replay ON webhooks.deliveries (subscriber_id, published_at);

GRANT USAGE ON SCHEMA webhooks TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA webhooks TO ecogrid_app;

-- +goose Down
DROP SCHEMA webhooks CASCADE;
