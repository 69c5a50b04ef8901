-- Auth: a person's grants (people.assignments) are part of what every call
-- checks, so a change of them notifies the caller caches too (channel
-- ecogrid_auth, payload the person id; see 00038). Grants that start or
-- end by the clock need no notice: a cache entry never outlives the next
-- valid_from or valid_to of its person.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION people.notify_grant_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('ecogrid_auth', OLD.person_id::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('ecogrid_auth', NEW.person_id::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER assignments_notify_change AFTER INSERT OR UPDATE OR DELETE ON people.assignments
    FOR EACH ROW EXECUTE FUNCTION people.notify_grant_change();

-- +goose Down
DROP TRIGGER assignments_notify_change ON people.assignments;
DROP FUNCTION people.notify_grant_change();
