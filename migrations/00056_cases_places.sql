-- Cases: the protected zones and river/reservoir reaches a case lies in
-- (issues 17, 18), copied from what field or monitoring committed when the
-- case was opened, and the rectification deadline a zone rule set. A
-- reach's chiefs see the cases on their reach beside the cell's people
-- (the GIN index answers "cases on these reaches").

-- +goose Up
ALTER TABLE cases.cases
    ADD COLUMN zone_codes    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN reach_codes   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN zone_deadline timestamptz;
CREATE INDEX cases_reach_codes ON cases.cases USING gin (reach_codes) WHERE reach_codes <> '{}';

-- +goose Down
DROP INDEX cases.cases_reach_codes;
ALTER TABLE cases.cases DROP COLUMN zone_deadline, DROP COLUMN reach_codes, DROP COLUMN zone_codes;
