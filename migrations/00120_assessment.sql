-- Assessment (考核): the county's indicator catalogue (its own definitions
-- of the built-in indicators' scoring rules, and the indicators other
-- departments supply), weight sets per kind of area, the kind chosen per
-- grid node, the values other departments supply per period with their
-- evidence, and the scorecards of closed periods. Every write is also a
-- ledger record (written by internal/assessment in the same transaction);
-- a closed period's scorecards are stored here with their SHA-256, which
-- the period_closed ledger record carries, so a changed row is detected.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS assessment;
GRANT USAGE ON SCHEMA assessment TO ecogrid_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA assessment
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ecogrid_app;

CREATE TABLE assessment.indicators (
    county_code text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    code        text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 100),
    definition  text NOT NULL CHECK (length(definition) <= 1000),
    unit        text NOT NULL CHECK (length(unit) <= 20),
    direction   text NOT NULL CHECK (direction IN ('higher', 'lower')),
    best        double precision NOT NULL,
    worst       double precision NOT NULL,
    -- builtin: computed from the data; external: entered per period.
    source      text NOT NULL CHECK (source IN ('builtin', 'external')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, code)
);

CREATE TABLE assessment.weights (
    county_code text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    area_kind   text NOT NULL CHECK (area_kind ~ '^[a-z][a-z0-9_]{1,39}$'),
    indicator   text NOT NULL,
    weight      double precision NOT NULL CHECK (weight >= 0 AND weight <= 1),
    PRIMARY KEY (county_code, area_kind, indicator)
);

CREATE TABLE assessment.node_kinds (
    node_code   text PRIMARY KEY CHECK (node_code ~ '^[0-9]{9,}$'),
    area_kind   text NOT NULL CHECK (area_kind ~ '^[a-z][a-z0-9_]{1,39}$'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Values supplied by other departments, per period and node. Never
-- changed: a correction is a new row (the latest counts).
CREATE TABLE assessment.external_values (
    id              uuid PRIMARY KEY,
    county_code     text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    period          text NOT NULL,
    node_code       text NOT NULL CHECK (node_code ~ '^[0-9]{6,}$'),
    indicator       text NOT NULL,
    value           double precision NOT NULL,
    evidence_note   text NOT NULL CHECK (evidence_note <> '' AND length(evidence_note) <= 2000),
    attachment_name text NOT NULL DEFAULT '',
    attachment_type text NOT NULL DEFAULT '',
    attachment      bytea,
    attachment_sha256 text NOT NULL DEFAULT '',
    entered_by      uuid NOT NULL,
    ledger_seq      bigint NOT NULL,
    entered_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (county_code, indicator) REFERENCES assessment.indicators (county_code, code)
);
CREATE INDEX external_values_period ON assessment.external_values (county_code, period, node_code);

-- A closed period's scorecards, one row per level (village, township,
-- person). digest is the SHA-256 of scorecards as stored, and is in the
-- ledger record ledger_seq of the county chain.
CREATE TABLE assessment.closed_periods (
    county_code text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    period      text NOT NULL,
    level       text NOT NULL CHECK (level IN ('village', 'township', 'person')),
    scorecards  bytea NOT NULL,
    digest      text NOT NULL,
    -- the last ledger record counted, and the period_closed record
    up_to_seq   bigint NOT NULL,
    ledger_seq  bigint NOT NULL,
    closed_at   timestamptz NOT NULL,
    PRIMARY KEY (county_code, period, level)
);

-- +goose Down
DROP SCHEMA assessment CASCADE;
