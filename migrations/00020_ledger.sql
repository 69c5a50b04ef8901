-- Ledger: the lifetime accountability record, one append-only hash-chained
-- Merkle log per county (internal/ledger explains the hashing).

-- +goose Up

-- One row per county chain: the head every appender locks (SELECT … FOR
-- UPDATE), so there is exactly one writer at a time per chain. size is the
-- number of records; head_hash the leaf hash of record size-1.
CREATE TABLE ledger.chains (
    county_code text        PRIMARY KEY CHECK (county_code ~ '^[0-9]{6}$'),
    size        bigint      NOT NULL DEFAULT 0 CHECK (size >= 0),
    head_hash   bytea       CHECK (head_hash IS NULL OR length(head_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The records. Every column except the hashes is covered by leaf_hash
-- (see ledger.LeafData); seq is the record's 0-based index in the county's
-- Merkle tree; prev_hash is the leaf hash of record seq-1 (32 zero bytes
-- for seq 0), so a gap, a swap or an edit shows at its exact place.
CREATE TABLE ledger.records (
    county_code     text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq >= 0),
    recorded_at     timestamptz NOT NULL,
    actor_id        uuid,
    actor_role      text        NOT NULL,
    actor_node_code text        NOT NULL DEFAULT '',
    action          text        NOT NULL,
    subject_type    text        NOT NULL,
    subject_id      text        NOT NULL,
    node_code       text        NOT NULL DEFAULT '',
    responsible     jsonb       NOT NULL DEFAULT '[]',
    payload         bytea       NOT NULL,
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    leaf_hash       bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    PRIMARY KEY (county_code, seq)
);
-- A place's history: subtree by code prefix, then time.
CREATE INDEX records_node ON ledger.records (node_code text_pattern_ops, recorded_at);
-- A case's or report's history.
CREATE INDEX records_subject ON ledger.records (subject_type, subject_id, seq);

-- Who a record concerns: its actor and the people responsible for the place
-- at the time. Derived from the records (VerifyChain checks that it
-- matches); kept as a narrow b-tree so that a person's lifetime history is a
-- range scan in (county, seq) order whatever its length, across transfers.
CREATE TABLE ledger.record_people (
    person_id   uuid    NOT NULL,
    county_code text    NOT NULL,
    seq         bigint  NOT NULL,
    as_actor    boolean NOT NULL,
    PRIMARY KEY (person_id, county_code, seq),
    FOREIGN KEY (county_code, seq) REFERENCES ledger.records (county_code, seq)
);

-- The Merkle tree's stored hashes (golang.org/x/mod/sumdb/tlog numbering:
-- StoredHashIndex(level, n)), so roots and proofs cost O(log n) reads.
CREATE TABLE ledger.tree_hashes (
    county_code text   NOT NULL,
    idx         bigint NOT NULL CHECK (idx >= 0),
    hash        bytea  NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (county_code, idx)
);

-- Signed checkpoints: the tree size and root signed as a note
-- (golang.org/x/mod/sumdb/note, ed25519), with the consistency proof from
-- the previous checkpoint of the chain.
CREATE TABLE ledger.checkpoints (
    county_code text        NOT NULL,
    size        bigint      NOT NULL CHECK (size > 0),
    root        bytea       NOT NULL CHECK (length(root) = 32),
    key_name    text        NOT NULL,
    key_id      bigint      NOT NULL,
    note        text        NOT NULL,
    prev_size   bigint      NOT NULL DEFAULT 0,
    proof       bytea       NOT NULL DEFAULT '\x',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, size)
);
CREATE INDEX checkpoints_created ON ledger.checkpoints (county_code, created_at);

-- +goose StatementBegin
CREATE FUNCTION ledger.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ledger.chain_advance_only() RETURNS trigger
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

CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON ledger.records
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON ledger.records
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER record_people_append_only BEFORE UPDATE OR DELETE ON ledger.record_people
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER record_people_no_truncate BEFORE TRUNCATE ON ledger.record_people
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER tree_hashes_append_only BEFORE UPDATE OR DELETE ON ledger.tree_hashes
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER tree_hashes_no_truncate BEFORE TRUNCATE ON ledger.tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger.checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON ledger.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER chains_advance_only BEFORE UPDATE ON ledger.chains
    FOR EACH ROW EXECUTE FUNCTION ledger.chain_advance_only();
CREATE TRIGGER chains_no_delete BEFORE DELETE ON ledger.chains
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER chains_no_truncate BEFORE TRUNCATE ON ledger.chains
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- The role the services run as may only add to the ledger and read it
-- (and advance a chain head, which the trigger above restricts).
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecogrid_app') THEN
        CREATE ROLE ecogrid_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created concurrently by another migration run
END;
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA ledger TO ecogrid_app;
REVOKE ALL ON ledger.records, ledger.record_people, ledger.tree_hashes, ledger.checkpoints, ledger.chains FROM ecogrid_app;
GRANT SELECT, INSERT ON ledger.records, ledger.record_people, ledger.tree_hashes, ledger.checkpoints TO ecogrid_app;
GRANT SELECT, INSERT, UPDATE ON ledger.chains TO ecogrid_app;

-- +goose Down
-- Refused on purpose: a ledger is kept for life. Drop it by hand if you
-- really mean to destroy the accountability record.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the ledger is kept for life and is never dropped by a migration';
END;
$$;
-- +goose StatementEnd
