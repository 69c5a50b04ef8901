-- Platform: PostGIS and one schema per bounded context.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE SCHEMA IF NOT EXISTS grid;
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE SCHEMA IF NOT EXISTS people;
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS field;
CREATE SCHEMA IF NOT EXISTS cases;
CREATE SCHEMA IF NOT EXISTS outbox;

-- The transactional outbox shared by gridd and cased: an act and the event
-- announcing it commit together; the relay publishes rows in seq order per
-- county with event_id as Nats-Msg-Id and marks them sent after the ack.
CREATE TABLE outbox.events (
    seq          bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    county_code  text        NOT NULL,
    subject      text        NOT NULL,
    event_type   text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_events_pending ON outbox.events (county_code, seq) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE IF EXISTS outbox.events;
DROP SCHEMA IF EXISTS outbox, cases, field, auth, people, ledger, grid;
