-- Grid: the county → township → village hierarchy with boundary history.
--
-- grid.nodes holds the current state of every node (one row per node, what
-- QGIS users open); grid.node_versions holds every version including the
-- current one (valid_to IS NULL), so a position from last year resolves to
-- the cell it was in then. Nodes are never deleted: abolishing one ends its
-- last version and sets retired_at.
--
-- Every insert/update of grid.nodes takes a new change_seq from a sequence
-- and notifies channel grid_nodes_changed with it, so that every gridd
-- replica's in-memory index can fetch just the changed rows (LISTEN, with a
-- poll of max(change_seq) as the fallback).

-- +goose Up
CREATE SEQUENCE grid.change_seq;

CREATE TABLE grid.nodes (
    id           uuid PRIMARY KEY,
    county_code  text        NOT NULL,   -- shard key: the first six digits of code
    code         text        NOT NULL,
    level        smallint    NOT NULL CHECK (level BETWEEN 1 AND 9),
    name         text        NOT NULL CHECK (name <> ''),
    parent_id    uuid REFERENCES grid.nodes (id),
    geom         geometry(MultiPolygon, 4326) NOT NULL,
    area_ha      double precision NOT NULL,
    tasks        jsonb       NOT NULL DEFAULT '[]',
    version      integer     NOT NULL DEFAULT 1,
    valid_from   timestamptz NOT NULL,
    retired_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   uuid,
    change_seq   bigint      NOT NULL DEFAULT nextval('grid.change_seq'),
    CONSTRAINT nodes_code_key UNIQUE (code),
    CONSTRAINT nodes_code_digits CHECK (code ~ '^[0-9]{6,}$'),
    CONSTRAINT nodes_county_code CHECK (county_code = left(code, 6)),
    CONSTRAINT nodes_parent CHECK ((level = 1) = (parent_id IS NULL))
);
CREATE INDEX nodes_geom ON grid.nodes USING gist (geom) WHERE retired_at IS NULL;
CREATE INDEX nodes_parent ON grid.nodes (parent_id);
CREATE INDEX nodes_code_prefix ON grid.nodes (code text_pattern_ops);
CREATE INDEX nodes_change_seq ON grid.nodes (change_seq);

CREATE TABLE grid.node_versions (
    node_id      uuid        NOT NULL REFERENCES grid.nodes (id),
    version      integer     NOT NULL,
    county_code  text        NOT NULL,
    code         text        NOT NULL,
    level        smallint    NOT NULL,
    name         text        NOT NULL,
    parent_id    uuid REFERENCES grid.nodes (id),
    geom         geometry(MultiPolygon, 4326) NOT NULL,
    area_ha      double precision NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,
    PRIMARY KEY (node_id, version),
    CONSTRAINT node_versions_period CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX node_versions_geom ON grid.node_versions USING gist (geom);
CREATE INDEX node_versions_period ON grid.node_versions (node_id, valid_from, valid_to);

-- +goose StatementBegin
CREATE FUNCTION grid.nodes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('grid.change_seq');
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER nodes_touch BEFORE UPDATE ON grid.nodes
    FOR EACH ROW EXECUTE FUNCTION grid.nodes_touch();

-- +goose StatementBegin
CREATE FUNCTION grid.nodes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('grid_nodes_changed', (SELECT coalesce(max(change_seq), 0)::text FROM grid.nodes));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER nodes_notify AFTER INSERT OR UPDATE ON grid.nodes
    FOR EACH STATEMENT EXECUTE FUNCTION grid.nodes_notify();

-- +goose Down
DROP TABLE IF EXISTS grid.node_versions;
DROP TABLE IF EXISTS grid.nodes;
DROP FUNCTION IF EXISTS grid.nodes_notify();
DROP FUNCTION IF EXISTS grid.nodes_touch();
DROP SEQUENCE IF EXISTS grid.change_seq;
