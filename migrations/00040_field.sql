-- Field reporting: report categories, reports, patrols with their GPS
-- tracks, and photos (partial uploads and content-addressed blobs).
--
-- Positions are stored as WGS-84 points (geometry(Point, 4326)) next to the
-- position exactly as the device reported it (latitude, longitude,
-- coordinate system, accuracy), so a GCJ-02 or BD-09 geotag can always be
-- re-derived. Grid codes are copied onto each row at arrival, so reports
-- stay where they were filed even when the grid is redrawn later.

-- +goose Up

-- The taxonomy: county_code '' is the national list every county uses; a
-- county adds its own codes under its county_code.
CREATE TABLE field.categories (
    county_code text NOT NULL,
    code        text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{0,39}$'),
    name        text NOT NULL CHECK (name <> '' AND char_length(name) <= 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    PRIMARY KEY (county_code, code)
);
INSERT INTO field.categories (county_code, code, name) VALUES
    ('', 'air', 'Air pollution'),
    ('', 'water', 'Water pollution'),
    ('', 'soil', 'Soil pollution'),
    ('', 'solid_waste', 'Solid waste'),
    ('', 'noise', 'Noise'),
    ('', 'ecological_damage', 'Ecological damage'),
    ('', 'illegal_sand_mining', 'Illegal sand mining'),
    ('', 'open_burning', 'Open burning'),
    ('', 'illegal_discharge', 'Illegal discharge'),
    ('', 'other', 'Other');

CREATE TABLE field.patrols (
    id                  uuid PRIMARY KEY,
    request_hash        bytea       NOT NULL,
    inspector_id        text        NOT NULL,
    county_code         text        NOT NULL,
    -- the inspector's cells when the patrol started: "outside the area" is
    -- judged against them, not against later assignments
    assigned_roots      text[]      NOT NULL DEFAULT '{}',
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    received_at         timestamptz NOT NULL DEFAULT now(),
    point_count         bigint      NOT NULL DEFAULT 0,
    track               geometry(LineString, 4326),
    distance_m          double precision NOT NULL DEFAULT 0,
    duration_s          bigint      NOT NULL DEFAULT 0,
    max_speed_kmh       double precision NOT NULL DEFAULT 0,
    points_outside_area bigint      NOT NULL DEFAULT 0,
    cell_codes          text[]      NOT NULL DEFAULT '{}',
    flags               text[]      NOT NULL DEFAULT '{}',
    CONSTRAINT patrols_period CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX patrols_inspector ON field.patrols (inspector_id, started_at);
CREATE INDEX patrols_county_started ON field.patrols (county_code, started_at);
CREATE INDEX patrols_cells ON field.patrols USING gin (cell_codes);

-- One row per GPS fix; the primary key makes replayed batches merge exactly once.
CREATE TABLE field.track_points (
    patrol_id    uuid        NOT NULL REFERENCES field.patrols (id),
    recorded_at  timestamptz NOT NULL,
    position     geometry(Point, 4326) NOT NULL,
    orig_lat     double precision NOT NULL,
    orig_lon     double precision NOT NULL,
    orig_system  smallint    NOT NULL,
    accuracy_m   double precision NOT NULL DEFAULT 0,
    village_code text,
    PRIMARY KEY (patrol_id, recorded_at)
);

CREATE TABLE field.reports (
    id             uuid PRIMARY KEY,
    request_hash   bytea       NOT NULL,
    reporter_id    text        NOT NULL,
    county_code    text        NOT NULL,
    township_code  text,
    village_code   text,
    -- deepest known grid code, for scope and cell filters (code prefixes)
    cell_code      text        NOT NULL,
    category       text        NOT NULL,
    severity       smallint    NOT NULL CHECK (severity BETWEEN 1 AND 4),
    description    text        NOT NULL CHECK (char_length(description) <= 4000),
    observed_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    position       geometry(Point, 4326) NOT NULL,
    orig_lat       double precision NOT NULL,
    orig_lon       double precision NOT NULL,
    orig_system    smallint    NOT NULL,
    accuracy_m     double precision NOT NULL DEFAULT 0,
    patrol_id      uuid,
    photo_sha256   text[]      NOT NULL DEFAULT '{}',
    violation      boolean     NOT NULL,
    outside_area   boolean     NOT NULL,
    event_id       uuid
);
CREATE INDEX reports_received ON field.reports (received_at DESC, id DESC);
CREATE INDEX reports_cell ON field.reports (cell_code text_pattern_ops, received_at DESC);
CREATE INDEX reports_reporter ON field.reports (reporter_id, received_at DESC);
CREATE INDEX reports_observed ON field.reports (county_code, observed_at);
CREATE INDEX reports_photos ON field.reports USING gin (photo_sha256);

-- A stored, verified photo: content-addressed by its SHA-256 (lower-case hex).
CREATE TABLE field.photos (
    sha256        text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size          bigint      NOT NULL CHECK (size > 0),
    content_type  text        NOT NULL,
    width         integer     NOT NULL,
    height        integer     NOT NULL,
    exif_lat      double precision,
    exif_lon      double precision,
    exif_time     timestamptz,
    uploaded_by   text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- An upload in progress or done. committed_offset only moves after the
-- bytes before it are fsynced, so a resumed upload never skips a hole.
CREATE TABLE field.uploads (
    id               uuid PRIMARY KEY,
    uploader_id      text        NOT NULL,
    report_id        uuid,
    sha256           text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size             bigint      NOT NULL CHECK (size > 0),
    content_type     text        NOT NULL,
    committed_offset bigint      NOT NULL DEFAULT 0,
    -- SHA-256 state after committed_offset bytes (crypto/sha256
    -- MarshalBinary), so a resumed upload need not re-read its prefix
    hash_state       bytea,
    completed_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uploads_offset CHECK (committed_offset BETWEEN 0 AND size)
);
CREATE INDEX uploads_abandoned ON field.uploads (updated_at) WHERE completed_at IS NULL;

-- EXIF comparison of a photo with a report that references it.
CREATE TABLE field.report_photos (
    report_id     uuid NOT NULL REFERENCES field.reports (id),
    sha256        text NOT NULL REFERENCES field.photos (sha256),
    distance_m    double precision,
    time_delta_s  double precision,
    exif_mismatch boolean NOT NULL,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, sha256)
);

-- +goose Down
DROP TABLE IF EXISTS field.report_photos, field.uploads, field.photos, field.reports,
    field.track_points, field.patrols, field.categories;
