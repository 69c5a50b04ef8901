-- Structured assignment tasks (issue 14): a post's patrol quota and other
-- standing duties as grid tasks (kind, count, period, minimum duration and
-- distance), which patrol compliance reads, beside the free-text tasks an
-- older app sends. Kept for life like the rest of the assignment.
-- +goose Up
ALTER TABLE people.assignments ADD COLUMN task_rules jsonb NOT NULL DEFAULT '[]'
    CONSTRAINT assignments_task_rules_array CHECK (jsonb_typeof(task_rules) = 'array');
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION people.assignments_guard() RETURNS trigger
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
       OR NEW.role <> OLD.role OR NEW.tasks <> OLD.tasks OR NEW.task_rules <> OLD.task_rules OR NEW.valid_from <> OLD.valid_from
       OR NEW.created_at <> OLD.created_at OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'an assignment can only be ended, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION people.assignments_guard() RETURNS trigger
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
ALTER TABLE people.assignments DROP COLUMN task_rules;
