-- GIS read model: views that desktop GIS tools (QGIS, ogrinfo/ogr2ogr)
-- open as they are, and the read-only role ecogrid_gis to open them with.
--
-- Each view has one integer feature id (ogc_fid: GDAL uses a column of
-- that name as the FID of a view), one typed geometry column in EPSG:4326,
-- names beside codes, and no array columns (arrays convert badly to
-- GeoPackage and shapefiles; they appear as comma-separated text). The
-- feature ids come from identity columns added here to the tables behind
-- the views, because their own keys (uuids, or node_id+version and
-- patrol_id+recorded_at) are not usable as GDAL feature ids.
--
-- The views are owned by the migrating role, so ecogrid_gis needs no
-- privilege on the working tables at all: it can read exactly these views
-- and write nothing (deploy/gis.md shows the QGIS connection).

-- +goose Up
ALTER TABLE grid.nodes         ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE grid.node_versions ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE field.patrols      ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE field.track_points ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE field.reports      ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE cases.cases        ADD COLUMN fid bigint GENERATED ALWAYS AS IDENTITY UNIQUE;

CREATE SCHEMA gis;

-- The grid as it stands: current boundaries only.
CREATE VIEW gis.grid_current AS
SELECT n.fid AS ogc_fid, n.code, n.name, n.level,
       CASE n.level WHEN 1 THEN 'county' WHEN 2 THEN 'township' WHEN 3 THEN 'village' ELSE 'cell' END AS level_name,
       p.code AS parent_code, p.name AS parent_name, n.county_code,
       n.area_ha, n.version, n.valid_from,
       n.geom::geometry(MultiPolygon, 4326) AS geom
FROM grid.nodes n LEFT JOIN grid.nodes p ON p.id = n.parent_id
WHERE n.retired_at IS NULL;

-- Every boundary version with its period (valid_to NULL: still in force).
CREATE VIEW gis.grid_history AS
SELECT v.fid AS ogc_fid, v.code, v.name, v.level, v.county_code, v.version,
       v.valid_from, v.valid_to, v.area_ha,
       v.geom::geometry(MultiPolygon, 4326) AS geom
FROM grid.node_versions v;

-- Open cases at the position of their report, with the cell's names.
CREATE VIEW gis.open_cases AS
SELECT c.fid AS ogc_fid, c.id::text AS case_id, c.county_code, c.township_code,
       t.name AS township_name, c.village_code, v.name AS village_name,
       c.category, c.severity, c.state, c.handler_id, c.supervisor_id,
       c.reported_at, c.deadline,
       (c.deadline IS NOT NULL AND c.deadline < now() AND c.state IN ('dispatched', 'in_progress')) AS overdue,
       c.escalated_at IS NOT NULL AS escalated,
       c.location::geometry(Point, 4326) AS geom
FROM cases.cases c
LEFT JOIN grid.nodes t ON t.code = c.township_code
LEFT JOIN grid.nodes v ON v.code = NULLIF(c.village_code, '')
WHERE c.state NOT IN ('closed', 'rejected') AND c.location IS NOT NULL;

-- Reports with their position; photos as a count and a list.
CREATE VIEW gis.reports AS
SELECT r.fid AS ogc_fid, r.id::text AS report_id, r.reporter_id, r.county_code,
       r.township_code, r.village_code, v.name AS village_name, r.category,
       r.severity, r.violation, r.outside_area, r.observed_at, r.received_at,
       r.description, cardinality(r.photo_sha256) AS photo_count,
       array_to_string(r.photo_sha256, ',') AS photos,
       r.position::geometry(Point, 4326) AS geom
FROM field.reports r
LEFT JOIN grid.nodes v ON v.code = r.cell_code;

-- Patrols of the last 30 days with their track.
CREATE VIEW gis.latest_patrols AS
SELECT p.fid AS ogc_fid, p.id::text AS patrol_id, p.inspector_id, p.county_code,
       p.started_at, p.ended_at, p.point_count, p.distance_m, p.duration_s,
       p.max_speed_kmh, p.points_outside_area,
       array_to_string(p.cell_codes, ',') AS cells,
       array_to_string(p.flags, ',') AS flags,
       p.track::geometry(LineString, 4326) AS geom
FROM field.patrols p
WHERE p.started_at > now() - interval '30 days' AND p.track IS NOT NULL;

-- GPS fixes of those patrols.
CREATE VIEW gis.latest_track_points AS
SELECT tp.fid AS ogc_fid, tp.patrol_id::text AS patrol_id, p.inspector_id,
       tp.recorded_at, tp.accuracy_m, tp.village_code,
       tp.position::geometry(Point, 4326) AS geom
FROM field.track_points tp JOIN field.patrols p ON p.id = tp.patrol_id
WHERE p.started_at > now() - interval '30 days';

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecogrid_gis') THEN
        CREATE ROLE ecogrid_gis NOLOGIN;
    END IF;
END
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA gis TO ecogrid_gis;
GRANT SELECT ON ALL TABLES IN SCHEMA gis TO ecogrid_gis;
-- QGIS reads PostGIS's own catalogue views to list layers.
GRANT USAGE ON SCHEMA public TO ecogrid_gis;
GRANT SELECT ON public.geometry_columns, public.spatial_ref_sys TO ecogrid_gis;

-- +goose Down
DROP SCHEMA IF EXISTS gis CASCADE;
ALTER TABLE cases.cases        DROP COLUMN IF EXISTS fid;
ALTER TABLE field.reports      DROP COLUMN IF EXISTS fid;
ALTER TABLE field.track_points DROP COLUMN IF EXISTS fid;
ALTER TABLE field.patrols      DROP COLUMN IF EXISTS fid;
ALTER TABLE grid.node_versions DROP COLUMN IF EXISTS fid;
ALTER TABLE grid.nodes         DROP COLUMN IF EXISTS fid;
