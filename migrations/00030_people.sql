-- People: persons with a stable identity for life, and their assignments
-- (person, grid node, role, tasks, valid_from, valid_to) which are never
-- deleted, only ended, so "who was responsible for this cell on that day"
-- always has an answer. Grid nodes are referenced by id and code without a
-- foreign key: the grid is another bounded context.

-- +goose Up
CREATE TABLE people.persons (
    id             uuid PRIMARY KEY,
    county_code    text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'), -- home county: shard key, who manages the record
    name           text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    phone          text        NOT NULL DEFAULT '' CHECK (length(phone) <= 32),
    employee_code  text        NOT NULL DEFAULT '' CHECK (length(employee_code) <= 64),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     uuid,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- An employee code names one person within a county.
CREATE UNIQUE INDEX persons_employee_code ON people.persons (county_code, employee_code) WHERE employee_code <> '';
CREATE INDEX persons_county ON people.persons (county_code, name);

CREATE TABLE people.assignments (
    id           uuid PRIMARY KEY,
    person_id    uuid        NOT NULL REFERENCES people.persons (id),
    county_code  text        NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    node_id      uuid,       -- grid node id; NULL only for an administrator bootstrapped before the grid was imported
    node_code    text        NOT NULL CHECK (node_code ~ '^[0-9]{6,}$' AND left(node_code, 6) = county_code),
    role         text        NOT NULL CHECK (role IN ('inspector', 'grid_chief', 'township_supervisor', 'county_officer', 'admin')),
    tasks        text[]      NOT NULL DEFAULT '{}',
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,
    ended_at     timestamptz,
    ended_by     uuid,
    end_reason   text        NOT NULL DEFAULT '',
    CONSTRAINT assignments_period CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT assignments_node CHECK (node_id IS NOT NULL OR role = 'admin')
);
-- One open assignment per person, node and role.
CREATE UNIQUE INDEX assignments_open ON people.assignments (person_id, node_code, role) WHERE valid_to IS NULL;
-- Who was responsible for a node (exact code lookups of a node and its ancestors).
CREATE INDEX assignments_node ON people.assignments (node_code, valid_from);
-- Subtree lists (code prefix).
CREATE INDEX assignments_node_prefix ON people.assignments (node_code text_pattern_ops) WHERE valid_to IS NULL;
-- A person's history and current grants.
CREATE INDEX assignments_person ON people.assignments (person_id, valid_from);

-- Assignments are kept for life: no DELETE, no TRUNCATE, and an UPDATE may
-- only end an open assignment (set valid_to, ended_at, ended_by, end_reason).
-- +goose StatementBegin
CREATE FUNCTION people.assignments_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'assignments are kept for life: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL
       OR NEW.valid_to IS NULL
       OR NEW.id <> OLD.id OR NEW.person_id <> OLD.person_id OR NEW.county_code <> OLD.county_code
       OR NEW.node_id IS DISTINCT FROM OLD.node_id OR NEW.node_code <> OLD.node_code
       OR NEW.role <> OLD.role OR NEW.tasks <> OLD.tasks OR NEW.valid_from <> OLD.valid_from
       OR NEW.created_at <> OLD.created_at OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'an assignment can only be ended, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER assignments_guard BEFORE UPDATE OR DELETE ON people.assignments
    FOR EACH ROW EXECUTE FUNCTION people.assignments_guard();
CREATE TRIGGER assignments_no_truncate BEFORE TRUNCATE ON people.assignments
    FOR EACH STATEMENT EXECUTE FUNCTION people.assignments_guard();

-- A person is never deleted either (their id is cited by the ledger for life).
-- +goose StatementBegin
CREATE FUNCTION people.persons_no_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'persons are kept for life: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER persons_no_delete BEFORE DELETE ON people.persons
    FOR EACH ROW EXECUTE FUNCTION people.persons_no_delete();
CREATE TRIGGER persons_no_truncate BEFORE TRUNCATE ON people.persons
    FOR EACH STATEMENT EXECUTE FUNCTION people.persons_no_delete();

-- Changes to assignments are announced so that caches of grants (if any
-- replica keeps one) drop the person's entry at once.
-- +goose StatementBegin
CREATE FUNCTION people.assignments_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('people_grants_changed', NEW.person_id::text);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER assignments_notify AFTER INSERT OR UPDATE ON people.assignments
    FOR EACH ROW EXECUTE FUNCTION people.assignments_notify();

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
GRANT USAGE ON SCHEMA people TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON people.persons, people.assignments TO ecogrid_app;

-- +goose Down
-- Refused on purpose: assignments are the answer to "who was responsible"
-- for life, cited by the ledger.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'people and assignments are kept for life and are never dropped by a migration';
END;
$$;
-- +goose StatementEnd
