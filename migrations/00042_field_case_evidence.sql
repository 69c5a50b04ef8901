-- Field: photos a case step cites as evidence (rectification, verification).
-- The cases context links them through field's Go API in the same
-- transaction as the step; field lets everyone whose scope covers the
-- case's node download them.

-- +goose Up
CREATE TABLE field.case_evidence (
    case_id      uuid        NOT NULL,
    sha256       text        NOT NULL REFERENCES field.photos (sha256),
    county_code  text        NOT NULL,
    node_code    text        NOT NULL,
    submitted_by text        NOT NULL,
    linked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, sha256)
);
CREATE INDEX case_evidence_photo ON field.case_evidence (sha256);

-- +goose Down
DROP TABLE IF EXISTS field.case_evidence;
