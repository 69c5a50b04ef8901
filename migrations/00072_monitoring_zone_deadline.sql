-- Monitoring: the rectification deadline a zone rule set for a violation
-- monitoring raised (issue 18), kept with it so that cased takes the
-- deadline from PostgreSQL, not from the event.

-- +goose Up
ALTER TABLE monitoring.violations ADD COLUMN zone_deadline timestamptz;

-- +goose Down
ALTER TABLE monitoring.violations DROP COLUMN zone_deadline;
