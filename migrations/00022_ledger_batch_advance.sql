-- Ledger: a chain head may advance by several records in one update (a
-- batch appended by ledger.AppendMany), never back, and only to a size
-- whose last record is there: the trigger now checks that record
-- size - 1 exists instead of that the size grew by exactly one.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger.chain_advance_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.county_code <> OLD.county_code OR NEW.size <= OLD.size OR NEW.created_at <> OLD.created_at
       OR NOT EXISTS (SELECT 1 FROM ledger.records WHERE county_code = NEW.county_code AND seq = NEW.size - 1) THEN
        RAISE EXCEPTION 'a ledger chain head only advances, to a record that is there'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger.chain_advance_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.county_code <> OLD.county_code OR NEW.size <> OLD.size + 1 OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a ledger chain head only advances by one record at a time'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
