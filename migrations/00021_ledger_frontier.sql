-- Ledger: keep each chain's Merkle frontier (the roots of the perfect
-- subtrees covering its records, largest first) in the head row, so an
-- append computes its tree hashes from the row it locks, with no read of
-- ledger.tree_hashes while other appenders wait. NULL for chains written
-- before this column: the next append reads the frontier from
-- ledger.tree_hashes and fills it in.

-- +goose Up
ALTER TABLE ledger.chains ADD COLUMN frontier bytea CHECK (frontier IS NULL OR length(frontier) % 32 = 0);

-- +goose Down
ALTER TABLE ledger.chains DROP COLUMN frontier;
