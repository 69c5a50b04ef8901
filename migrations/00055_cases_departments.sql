-- Cases in departments' hands (issue 16): two more states, and the
-- department tasks of a case — a transfer (移送) waiting for the
-- department to accept or refuse, and the tasks of joint handling
-- (联合执法), each with its department, its evidence and who did it.
-- Departments are referenced by id: they belong to internal/departments.

-- +goose Up
ALTER TABLE cases.cases DROP CONSTRAINT cases_state_check;
ALTER TABLE cases.cases ADD CONSTRAINT cases_state_check CHECK (state IN ('reported', 'accepted', 'rejected',
    'dispatched', 'in_progress', 'rectified', 'verified', 'closed', 'transferred', 'department_handling'));

CREATE TABLE cases.department_tasks (
    id            uuid PRIMARY KEY,
    case_id       uuid NOT NULL REFERENCES cases.cases (id),
    department_id uuid NOT NULL,
    -- transfer: the case handed to the department; joint: one department's part of joint handling.
    kind          text NOT NULL CHECK (kind IN ('transfer', 'joint')),
    lead          boolean NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'accepted', 'refused', 'open', 'done', 'superseded')),
    task          text NOT NULL DEFAULT '',
    reason        text NOT NULL DEFAULT '',
    evidence_note text NOT NULL DEFAULT '',
    evidence      text[] NOT NULL DEFAULT '{}',
    opened_by     text NOT NULL,
    decided_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX department_tasks_case ON cases.department_tasks (case_id, created_at);
CREATE INDEX department_tasks_open ON cases.department_tasks (department_id) WHERE state IN ('pending', 'accepted', 'open');

-- +goose Down
DROP TABLE IF EXISTS cases.department_tasks;
ALTER TABLE cases.cases DROP CONSTRAINT cases_state_check;
ALTER TABLE cases.cases ADD CONSTRAINT cases_state_check CHECK (state IN ('reported', 'accepted', 'rejected',
    'dispatched', 'in_progress', 'rectified', 'verified', 'closed'));
