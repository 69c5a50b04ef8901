-- Auth: tell every process's caller cache (internal/auth) when what an
-- access token stands for changes: a session revoked, ended or moved, an
-- account disabled or its password changed. The payload is the person id;
-- the caches drop that person's entries. NOTIFY is sent at commit, so a
-- cache never hears of a change it could not yet read.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION auth.notify_caller_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ecogrid_auth', OLD.person_id::text);
    IF TG_OP = 'UPDATE' AND NEW.person_id IS DISTINCT FROM OLD.person_id THEN
        PERFORM pg_notify('ecogrid_auth', NEW.person_id::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- A refresh (last_refresh_at) changes nothing a call checks: no notice.
CREATE TRIGGER sessions_notify_change AFTER UPDATE ON auth.sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.account_id IS DISTINCT FROM NEW.account_id OR OLD.person_id IS DISTINCT FROM NEW.person_id)
    EXECUTE FUNCTION auth.notify_caller_change();
CREATE TRIGGER sessions_notify_delete AFTER DELETE ON auth.sessions
    FOR EACH ROW EXECUTE FUNCTION auth.notify_caller_change();
CREATE TRIGGER accounts_notify_change AFTER UPDATE ON auth.accounts
    FOR EACH ROW WHEN (OLD.disabled_at IS DISTINCT FROM NEW.disabled_at OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.person_id IS DISTINCT FROM NEW.person_id)
    EXECUTE FUNCTION auth.notify_caller_change();
CREATE TRIGGER accounts_notify_delete AFTER DELETE ON auth.accounts
    FOR EACH ROW EXECUTE FUNCTION auth.notify_caller_change();

-- +goose Down
DROP TRIGGER accounts_notify_delete ON auth.accounts;
DROP TRIGGER accounts_notify_change ON auth.accounts;
DROP TRIGGER sessions_notify_delete ON auth.sessions;
DROP TRIGGER sessions_notify_change ON auth.sessions;
DROP FUNCTION auth.notify_caller_change();
