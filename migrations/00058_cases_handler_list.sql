-- ListCases by handler (issue 14): a supervisor follows one handler's
-- cases, open or closed, newest first, in pages.
-- +goose Up
CREATE INDEX cases_handler ON cases.cases (handler_id, created_at DESC, id DESC) WHERE handler_id <> '';

-- +goose Down
DROP INDEX IF EXISTS cases.cases_handler;
