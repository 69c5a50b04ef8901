-- Grid: the regions above the county (issue 15). A national county file
-- names each county's prefecture (芦溪县 360323 under 萍乡市 360300) or,
-- for a county the province administers directly, its province. Regions
-- are not grid nodes: every node belongs to one county, the shard key, and
-- a prefecture would belong to none. grid.regions is small (34 provinces,
-- ~330 prefectures) and read by every county: a reference table, copied to
-- every node when the database is distributed with Citus.

-- +goose Up
CREATE TABLE grid.regions (
    code        text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('province', 'prefecture')),
    parent_code text REFERENCES grid.regions (code),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT regions_code CHECK (
        (kind = 'province' AND code ~ '^[0-9]{2}0000$' AND parent_code IS NULL) OR
        (kind = 'prefecture' AND code ~ '^[0-9]{4}00$' AND code !~ '0000$' AND parent_code = left(code, 2) || '0000'))
);

ALTER TABLE grid.nodes ADD COLUMN region_code text REFERENCES grid.regions (code);
ALTER TABLE grid.nodes ADD CONSTRAINT nodes_region_county CHECK (
    region_code IS NULL OR (level = 1 AND left(region_code, 2) = left(code, 2)));


-- +goose Down
ALTER TABLE grid.nodes DROP COLUMN region_code;
DROP TABLE grid.regions;
