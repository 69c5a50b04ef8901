-- Grid: boundary history is kept for life. A version's row may only be
-- closed (valid_to set once, later than valid_from); versions and nodes
-- are never deleted, and neither table may be truncated. A mistake is
-- corrected by a new version, so that a report from last year still
-- resolves to the cell it was in then.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION grid.node_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'grid boundary history is kept for life: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    IF OLD.valid_to IS NOT NULL
       OR NEW.valid_to IS NULL
       OR (NEW.node_id, NEW.version, NEW.county_code, NEW.code, NEW.level, NEW.name, NEW.parent_id,
           NEW.area_ha, NEW.valid_from, NEW.created_at, NEW.created_by)
          IS DISTINCT FROM
          (OLD.node_id, OLD.version, OLD.county_code, OLD.code, OLD.level, OLD.name, OLD.parent_id,
           OLD.area_ha, OLD.valid_from, OLD.created_at, OLD.created_by)
       OR ST_AsEWKB(NEW.geom) IS DISTINCT FROM ST_AsEWKB(OLD.geom) THEN
        RAISE EXCEPTION 'a grid boundary version can only be closed once, never changed'
            USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER node_versions_guard BEFORE UPDATE OR DELETE ON grid.node_versions
    FOR EACH ROW EXECUTE FUNCTION grid.node_versions_guard();
CREATE TRIGGER node_versions_no_truncate BEFORE TRUNCATE ON grid.node_versions
    FOR EACH STATEMENT EXECUTE FUNCTION grid.node_versions_guard();
CREATE TRIGGER nodes_no_delete BEFORE DELETE ON grid.nodes
    FOR EACH ROW EXECUTE FUNCTION grid.node_versions_guard();
CREATE TRIGGER nodes_no_truncate BEFORE TRUNCATE ON grid.nodes
    FOR EACH STATEMENT EXECUTE FUNCTION grid.node_versions_guard();

-- +goose Down
DROP TRIGGER IF EXISTS nodes_no_truncate ON grid.nodes;
DROP TRIGGER IF EXISTS nodes_no_delete ON grid.nodes;
DROP TRIGGER IF EXISTS node_versions_no_truncate ON grid.node_versions;
DROP TRIGGER IF EXISTS node_versions_guard ON grid.node_versions;
DROP FUNCTION IF EXISTS grid.node_versions_guard();
