-- The role the services run as in production: a login role granted
-- ecogrid_app (see deploy/README.md). It may read and write the working
-- tables of every context; the ledger migration gives it only SELECT and
-- INSERT on the ledger, so even a compromised service cannot rewrite history.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecogrid_app') THEN
        CREATE ROLE ecogrid_app NOLOGIN;
    END IF;
END
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA grid, field, cases, outbox TO ecogrid_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA grid, field, cases, outbox
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ecogrid_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA grid, field, cases, outbox
    GRANT USAGE, SELECT ON SEQUENCES TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON outbox.events TO ecogrid_app;
GRANT USAGE, SELECT ON SEQUENCE outbox.events_seq_seq TO ecogrid_app;

-- +goose Down
ALTER DEFAULT PRIVILEGES IN SCHEMA grid, field, cases, outbox
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM ecogrid_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA grid, field, cases, outbox
    REVOKE USAGE, SELECT ON SEQUENCES FROM ecogrid_app;
REVOKE ALL ON outbox.events FROM ecogrid_app;
REVOKE USAGE ON SCHEMA grid, field, cases, outbox FROM ecogrid_app;
