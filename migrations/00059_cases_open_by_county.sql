-- Open cases per county (the ecogrid_cases_open and ecogrid_cases_overdue
-- metrics, counted at most every 15 seconds by each cased): an index-only
-- count instead of a scan of every case ever opened.

-- +goose Up
CREATE INDEX cases_open_county ON cases.cases (county_code, state, deadline) WHERE state NOT IN ('closed', 'rejected');

-- +goose Down
DROP INDEX IF EXISTS cases.cases_open_county;
