-- Field: where a report lies beside its grid cell (issues 17, 18). The
-- protected zones containing it (county-qualified codes, zones.Key) and
-- the river and reservoir reaches within 50 m of it, each by code and by
-- the version in force when it was filed, so that a reach redrawn later
-- leaves the report on the reach as it was. A violation inside a zone
-- whose rule escalates at once or sets a deadline keeps that decision,
-- and reported_severity keeps the severity as filed when a zone's
-- minimum raised it; cased checks the event against these columns.

-- +goose Up
ALTER TABLE field.reports
    ADD COLUMN zone_codes        text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN reach_codes       text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN reach_versions    int[]   NOT NULL DEFAULT '{}',
    ADD COLUMN escalate_now      boolean NOT NULL DEFAULT false,
    ADD COLUMN zone_deadline     timestamptz,
    ADD COLUMN zone_reason       text    NOT NULL DEFAULT '',
    ADD COLUMN reported_severity smallint,
    ADD CONSTRAINT reports_reach_versions CHECK (cardinality(reach_codes) = cardinality(reach_versions));
CREATE INDEX reports_reach_codes ON field.reports USING gin (reach_codes) WHERE reach_codes <> '{}';
CREATE INDEX reports_zone_codes ON field.reports USING gin (zone_codes) WHERE zone_codes <> '{}';

-- +goose Down
DROP INDEX field.reports_zone_codes;
DROP INDEX field.reports_reach_codes;
ALTER TABLE field.reports
    DROP CONSTRAINT reports_reach_versions,
    DROP COLUMN reported_severity, DROP COLUMN zone_reason, DROP COLUMN zone_deadline,
    DROP COLUMN escalate_now, DROP COLUMN reach_versions, DROP COLUMN reach_codes, DROP COLUMN zone_codes;
