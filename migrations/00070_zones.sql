-- Zones: protected zones as a layer over the grid (issue 18).
--
-- zones.zones holds every version of every zone, one row per version, with
-- one geometry column so that GIS staff open it in QGIS as it is; the
-- current version of a zone has valid_to IS NULL (at most one per code).
-- Versions are never deleted: redrawing a zone ends its current version
-- and inserts the next; abolishing it ends the last one.
--
-- zones.kinds holds the kinds a county adds beside the built-in ones
-- (ecological red line, drinking-water source zones, nature reserve
-- zones, no-build, restricted-build), and zones.rules what a kind means in
-- a county: minimum severity, deadline, escalation, patrol quota.
--
-- Every write takes a change_seq from zones.change_seq, so gridd's
-- in-memory zone index sees changes by polling max(change_seq).

-- +goose Up
CREATE SCHEMA IF NOT EXISTS zones;

CREATE SEQUENCE zones.change_seq;

CREATE TABLE zones.kinds (
    county_code  text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    kind         text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{1,39}$'),
    name         text        NOT NULL CHECK (name <> ''),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,
    PRIMARY KEY (county_code, kind)
);

CREATE TABLE zones.zones (
    county_code  text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    code         text        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    kind         text        NOT NULL,
    name         text        NOT NULL CHECK (name <> ''),
    legal_basis  text        NOT NULL DEFAULT '',
    geom         geometry(MultiPolygon, 4326) NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,
    change_seq   bigint      NOT NULL DEFAULT nextval('zones.change_seq'),
    PRIMARY KEY (county_code, code, version),
    CONSTRAINT zones_period CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX zones_current ON zones.zones (county_code, code) WHERE valid_to IS NULL;
CREATE INDEX zones_geom_current ON zones.zones USING gist (geom) WHERE valid_to IS NULL;
CREATE INDEX zones_geom ON zones.zones USING gist (geom);
CREATE INDEX zones_change_seq ON zones.zones (change_seq);

-- +goose StatementBegin
CREATE FUNCTION zones.zones_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('zones.change_seq');
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER zones_touch BEFORE UPDATE ON zones.zones
    FOR EACH ROW EXECUTE FUNCTION zones.zones_touch();

CREATE TABLE zones.rules (
    county_code     text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    kind            text        NOT NULL,
    min_severity    smallint    NOT NULL DEFAULT 0 CHECK (min_severity BETWEEN 0 AND 4),
    deadline_hours  integer     NOT NULL DEFAULT 0 CHECK (deadline_hours >= 0),
    escalate_now    boolean     NOT NULL DEFAULT false,
    patrols_per_month integer   NOT NULL DEFAULT 0 CHECK (patrols_per_month >= 0),
    note            text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      uuid,
    PRIMARY KEY (county_code, kind)
);

GRANT USAGE ON SCHEMA zones TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON zones.kinds, zones.zones, zones.rules TO ecogrid_app;
GRANT USAGE, SELECT ON SEQUENCE zones.change_seq TO ecogrid_app;

-- +goose Down
DROP SCHEMA IF EXISTS zones CASCADE;
