-- Grid: change_seq order is commit order for every writer. The replicas'
-- indexes fetch "change_seq > last seen"; if two writers could commit out
-- of sequence order, a replica could skip a change. The store serialises
-- its writers on an advisory lock; this makes the database do it for any
-- writer: the trigger takes the same transaction-scoped lock before taking
-- a sequence number, on insert as well as update.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION grid.nodes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(113741092124530); -- grid.writeLockKey ("gridwr")
    NEW.change_seq := nextval('grid.change_seq');
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER nodes_touch_insert BEFORE INSERT ON grid.nodes
    FOR EACH ROW EXECUTE FUNCTION grid.nodes_touch();

-- +goose Down
DROP TRIGGER IF EXISTS nodes_touch_insert ON grid.nodes;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION grid.nodes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('grid.change_seq');
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
