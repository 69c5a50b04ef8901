-- Waters (河长制/库长制): water bodies, their reaches (河段/库区) with
-- versions, and the chiefs (河长/库长, 总河长) of each reach, kept for life.
-- Grid nodes are referenced by id and code without a foreign key: the grid
-- is another bounded context. One geometry column per table, EPSG:4326, so
-- GIS staff open the tables in QGIS as they are (the two typed views give
-- QGIS one geometry type per layer).

-- +goose Up
CREATE SCHEMA IF NOT EXISTS waters;

CREATE TABLE waters.bodies (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    county_code  text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    kind         text        NOT NULL CHECK (kind IN ('river', 'stream', 'reservoir', 'lake', 'pond')),
    name         text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per version of a reach; the current version has valid_to NULL.
-- A changed geometry or owner ends the current row and adds the next
-- version, so a report filed in 2025 still finds the reach as it was.
CREATE TABLE waters.reaches (
    id           uuid PRIMARY KEY,
    code         text        NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    version      int         NOT NULL CHECK (version >= 1),
    body_code    text        NOT NULL REFERENCES waters.bodies (code),
    seq          int         NOT NULL DEFAULT 0, -- order along the river, upstream first
    name         text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    county_code  text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    node_id      uuid        NOT NULL, -- grid node responsible for the reach
    node_code    text        NOT NULL CHECK (node_code ~ '^[0-9]{6,}$' AND left(node_code, 6) = county_code),
    node_level   smallint    NOT NULL CHECK (node_level BETWEEN 1 AND 4),
    geom         geometry(Geometry, 4326) NOT NULL
                 CHECK (GeometryType(geom) IN ('MULTILINESTRING', 'MULTIPOLYGON')),
    length_m     double precision NOT NULL DEFAULT 0,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,
    CONSTRAINT reaches_period CHECK (valid_to IS NULL OR valid_to >= valid_from),
    UNIQUE (code, version)
);
CREATE UNIQUE INDEX reaches_current ON waters.reaches (code) WHERE valid_to IS NULL;
CREATE INDEX reaches_geom ON waters.reaches USING gist (geom);
CREATE INDEX reaches_county ON waters.reaches (county_code, body_code, seq);

CREATE VIEW waters.river_reaches_current AS
    SELECT id, code, version, body_code, seq, name, node_code, length_m, valid_from,
           geom::geometry(MultiLineString, 4326) AS geom
    FROM waters.reaches WHERE valid_to IS NULL AND GeometryType(geom) = 'MULTILINESTRING';
CREATE VIEW waters.area_reaches_current AS
    SELECT id, code, version, body_code, seq, name, node_code, valid_from,
           geom::geometry(MultiPolygon, 4326) AS geom
    FROM waters.reaches WHERE valid_to IS NULL AND GeometryType(geom) = 'MULTIPOLYGON';

-- Chiefs: a reach chief (河长 of a river reach, 库长 of a reservoir or
-- lake) holds one reach; the chief river chief (总河长) holds a county.
-- Like people's assignments they are never deleted, only ended.
CREATE TABLE waters.chiefs (
    id             uuid PRIMARY KEY,
    request_hash   bytea       NOT NULL,
    person_id      uuid        NOT NULL,
    name           text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    phone          text        NOT NULL DEFAULT '' CHECK (length(phone) <= 32),
    post           text        NOT NULL DEFAULT '' CHECK (length(post) <= 100), -- e.g. 镇党委书记
    role           text        NOT NULL CHECK (role IN ('reach_chief', 'chief_river_chief')),
    county_code    text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    reach_code     text        CHECK (reach_code IS NULL OR reach_code ~ '^[A-Za-z0-9_-]{1,64}$'),
    node_code      text        NOT NULL CHECK (node_code ~ '^[0-9]{6,}$' AND left(node_code, 6) = county_code),
    tasks          jsonb       NOT NULL DEFAULT '[]',
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     uuid,
    ended_at       timestamptz,
    ended_by       uuid,
    end_reason     text        NOT NULL DEFAULT '' CHECK (length(end_reason) <= 400),
    CONSTRAINT chiefs_period CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT chiefs_reach CHECK ((role = 'reach_chief') = (reach_code IS NOT NULL))
);
CREATE UNIQUE INDEX chiefs_open ON waters.chiefs (person_id, coalesce(reach_code, ''), role) WHERE valid_to IS NULL;
CREATE INDEX chiefs_reach ON waters.chiefs (reach_code, valid_from);
CREATE INDEX chiefs_county ON waters.chiefs (county_code, role, valid_from);
CREATE INDEX chiefs_person ON waters.chiefs (person_id, valid_from);

-- +goose StatementBegin
CREATE FUNCTION waters.chiefs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'chief assignments are kept for life: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL OR NEW.valid_to IS NULL
       OR (to_jsonb(NEW) - ARRAY['valid_to', 'ended_at', 'ended_by', 'end_reason'])
          <> (to_jsonb(OLD) - ARRAY['valid_to', 'ended_at', 'ended_by', 'end_reason']) THEN
        RAISE EXCEPTION 'a chief assignment can only be ended, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER chiefs_guard BEFORE UPDATE OR DELETE ON waters.chiefs
    FOR EACH ROW EXECUTE FUNCTION waters.chiefs_guard();
CREATE TRIGGER chiefs_no_truncate BEFORE TRUNCATE ON waters.chiefs
    FOR EACH STATEMENT EXECUTE FUNCTION waters.chiefs_guard();

-- Reach versions are history too: only the end of the current one changes.
-- +goose StatementBegin
CREATE FUNCTION waters.reaches_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'reach versions are kept for life: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL OR NEW.valid_to IS NULL
       OR (to_jsonb(NEW) - 'valid_to') <> (to_jsonb(OLD) - 'valid_to') THEN
        RAISE EXCEPTION 'a reach version can only be ended, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER reaches_guard BEFORE UPDATE OR DELETE ON waters.reaches
    FOR EACH ROW EXECUTE FUNCTION waters.reaches_guard();
CREATE TRIGGER reaches_no_truncate BEFORE TRUNCATE ON waters.reaches
    FOR EACH STATEMENT EXECUTE FUNCTION waters.reaches_guard();

GRANT USAGE ON SCHEMA waters TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA waters TO ecogrid_app;

-- +goose Down
DROP SCHEMA waters CASCADE;
