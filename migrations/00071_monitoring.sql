-- Monitoring: water monitoring points and their samples (issue 18).
--
-- monitoring.points are sections (断面), wells and intakes with a target
-- class of GB 3838-2002 and a sampling schedule (one sample per window of
-- sample_every_hours from schedule_start); swept_until is how far the
-- sweeper has checked closed windows for missed samples.
-- monitoring.samples are immutable once recorded (the trigger refuses
-- UPDATE and DELETE; a correction is a new sample citing the one it
-- corrects). monitoring.misses records each missed window once, and
-- monitoring.violations what every violation monitoring raised said, so
-- cased can check an event against PostgreSQL before opening a case.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS monitoring;

CREATE TABLE monitoring.points (
    id                 uuid PRIMARY KEY,
    county_code        text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    code               text        NOT NULL,
    name               text        NOT NULL CHECK (name <> ''),
    kind               smallint    NOT NULL,
    water_body         smallint    NOT NULL,
    target_class       smallint    NOT NULL CHECK (target_class BETWEEN 1 AND 5),
    latitude           double precision NOT NULL,
    longitude          double precision NOT NULL,
    geom               geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)) STORED,
    township_code      text        NOT NULL,
    village_code       text        NOT NULL,
    sample_every_hours integer     NOT NULL DEFAULT 0 CHECK (sample_every_hours >= 0),
    schedule_start     timestamptz NOT NULL,
    swept_until        timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         uuid,
    CONSTRAINT points_code_key UNIQUE (county_code, code)
);
CREATE INDEX points_due ON monitoring.points (swept_until) WHERE sample_every_hours > 0;
CREATE INDEX points_geom ON monitoring.points USING gist (geom);

CREATE TABLE monitoring.samples (
    id                 uuid PRIMARY KEY,
    point_id           uuid        NOT NULL REFERENCES monitoring.points (id),
    sampled_at         timestamptz NOT NULL,
    sampler            text        NOT NULL,
    lab                text        NOT NULL,
    measurements       jsonb       NOT NULL,
    class              smallint    NOT NULL CHECK (class BETWEEN 0 AND 6),
    exceeding          text[]      NOT NULL DEFAULT '{}',
    corrects_id        uuid REFERENCES monitoring.samples (id),
    violation_event_id uuid,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    recorded_by        uuid
);
CREATE INDEX samples_point_time ON monitoring.samples (point_id, sampled_at);

-- +goose StatementBegin
CREATE FUNCTION monitoring.samples_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'monitoring.samples are immutable: record a correction instead';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER samples_immutable BEFORE UPDATE OR DELETE ON monitoring.samples
    FOR EACH ROW EXECUTE FUNCTION monitoring.samples_immutable();

CREATE TABLE monitoring.misses (
    point_id     uuid        NOT NULL REFERENCES monitoring.points (id),
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    event_id     uuid        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (point_id, window_start)
);

CREATE TABLE monitoring.violations (
    event_id      uuid PRIMARY KEY,
    county_code   text        NOT NULL,
    township_code text        NOT NULL,
    village_code  text        NOT NULL,
    point_id      uuid        NOT NULL REFERENCES monitoring.points (id),
    sample_id     uuid REFERENCES monitoring.samples (id),
    window_start  timestamptz,
    category      text        NOT NULL,
    severity      text        NOT NULL,
    latitude      double precision NOT NULL,
    longitude     double precision NOT NULL,
    occurred_at   timestamptz NOT NULL,
    description   text        NOT NULL,
    zone_codes    text[]      NOT NULL DEFAULT '{}',
    escalate_now  boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT violations_cause CHECK ((sample_id IS NULL) <> (window_start IS NULL))
);

GRANT USAGE ON SCHEMA monitoring TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON monitoring.points TO ecogrid_app;
GRANT SELECT, INSERT ON monitoring.samples, monitoring.misses, monitoring.violations TO ecogrid_app;

-- +goose Down
DROP SCHEMA IF EXISTS monitoring CASCADE;
