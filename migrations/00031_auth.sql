-- Auth: accounts with argon2id password hashes, sessions (one per login)
-- with rotating refresh tokens stored only as SHA-256 hashes, and login
-- throttling kept in the database so that every replica sees the same
-- counters and lockouts.

-- +goose Up
CREATE TABLE auth.accounts (
    id                   uuid PRIMARY KEY,
    person_id            uuid        NOT NULL UNIQUE REFERENCES people.persons (id),
    username             text        NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{2,63}$'),
    password_hash        text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    created_by           uuid,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at          timestamptz,
    CONSTRAINT accounts_username_key UNIQUE (username)
);

-- A session is one login on one device; its refresh tokens form a family.
-- Presenting a refresh token that was already rotated means it was stolen
-- (or replayed): the whole family is revoked.
CREATE TABLE auth.sessions (
    id              uuid PRIMARY KEY,
    account_id      uuid        NOT NULL REFERENCES auth.accounts (id),
    person_id       uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,       -- absolute end; refreshing never extends past it
    last_refresh_at timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoke_reason   text        NOT NULL DEFAULT '',
    client_addr     text        NOT NULL DEFAULT '',
    user_agent      text        NOT NULL DEFAULT ''
);
CREATE INDEX sessions_account ON auth.sessions (account_id) WHERE revoked_at IS NULL;

CREATE TABLE auth.refresh_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (length(token_hash) = 32), -- SHA-256 of the token; the token itself is never stored
    session_id  uuid        NOT NULL REFERENCES auth.sessions (id),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz
);
CREATE INDEX refresh_tokens_session ON auth.refresh_tokens (session_id);

-- Failed-login counters per key ("account:<username>" or "addr:<ip>"):
-- failures within the window starting at window_start; locked_until set
-- when the limit is reached. A county officer lifts an account lock by
-- deleting its row (UnlockAccount / gridctl users unlock).
CREATE TABLE auth.login_limits (
    key           text        PRIMARY KEY,
    failures      integer     NOT NULL DEFAULT 0,
    window_start  timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_limits_updated ON auth.login_limits (updated_at);

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecogrid_app') THEN
        CREATE ROLE ecogrid_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA auth TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON auth.accounts, auth.sessions, auth.refresh_tokens TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.login_limits TO ecogrid_app;

-- +goose Down
DROP TABLE auth.login_limits;
DROP TABLE auth.refresh_tokens;
DROP TABLE auth.sessions;
DROP TABLE auth.accounts;
