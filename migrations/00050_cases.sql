-- Cases: the case workflow of cased (state, timeline, consumer inbox,
-- deadline rules), and two additions to the shared outbox for its relay.

-- +goose Up

-- Wake outbox relays when events are written, instead of waiting for a poll.
-- +goose StatementBegin
CREATE FUNCTION outbox.notify_relays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_notify_relays AFTER INSERT ON outbox.events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.notify_relays();

-- The reconciler looks for recent violation events that have no case yet.
CREATE INDEX outbox_events_violations ON outbox.events (created_at)
    WHERE subject LIKE 'ecogrid.v1.violations.%';

-- Rectification deadlines by severity, per county; county_code '' holds the
-- defaults for counties without their own row. rectify_days 0 means by the
-- end of the same day (China Standard Time); max_days bounds the deadline
-- with every approved extension, counted from dispatch.
CREATE TABLE cases.deadline_rules (
    county_code  text    NOT NULL,
    severity     text    NOT NULL CHECK (severity IN ('SEVERITY_MINOR', 'SEVERITY_NORMAL', 'SEVERITY_SERIOUS', 'SEVERITY_CRITICAL')),
    rectify_days integer NOT NULL CHECK (rectify_days BETWEEN 0 AND 60),
    max_days     integer NOT NULL CHECK (max_days >= rectify_days AND max_days <= 60),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, severity)
);
INSERT INTO cases.deadline_rules (county_code, severity, rectify_days, max_days) VALUES
    ('', 'SEVERITY_MINOR',    0, 15),
    ('', 'SEVERITY_NORMAL',   3, 15),
    ('', 'SEVERITY_SERIOUS',  7, 15),
    ('', 'SEVERITY_CRITICAL', 1, 15);

CREATE TABLE cases.cases (
    id                       uuid PRIMARY KEY,
    report_id                uuid NOT NULL,
    violation_event_id       uuid NOT NULL,
    county_code              text NOT NULL,
    township_code            text NOT NULL,
    village_code             text NOT NULL DEFAULT '',
    -- The deepest grid code the case is located in: its scope.
    node_code                text NOT NULL,
    category                 text NOT NULL,
    severity                 text NOT NULL,
    description              text NOT NULL DEFAULT '',
    location                 geometry(Point, 4326),
    reporter_id              text NOT NULL DEFAULT '',
    photo_sha256             text[] NOT NULL DEFAULT '{}',
    -- People responsible for the cell when the violation was reported.
    responsible              jsonb NOT NULL DEFAULT '[]',
    observed_at              timestamptz,
    reported_at              timestamptz NOT NULL,
    state                    text NOT NULL CHECK (state IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress', 'rectified', 'verified', 'closed')),
    -- The supervisor who accepted or dispatched the case holds it; the handler rectifies it.
    supervisor_id            text NOT NULL DEFAULT '',
    handler_id               text NOT NULL DEFAULT '',
    dispatched_at            timestamptz,
    deadline                 timestamptz,
    extension_days           integer NOT NULL DEFAULT 0,
    pending_extension_days   integer NOT NULL DEFAULT 0,
    pending_extension_reason text NOT NULL DEFAULT '',
    pending_extension_by     text NOT NULL DEFAULT '',
    rectification_note       text NOT NULL DEFAULT '',
    rectification_photos     text[] NOT NULL DEFAULT '{}',
    rectified_at             timestamptz,
    verified_by              text NOT NULL DEFAULT '',
    verified_at              timestamptz,
    closed_at                timestamptz,
    escalated_at             timestamptz,
    escalation_reason        text NOT NULL DEFAULT '',
    reopen_count             integer NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    version                  integer NOT NULL DEFAULT 1,
    -- One case per violation, whatever is redelivered or republished.
    CONSTRAINT cases_report_id_key UNIQUE (report_id),
    CONSTRAINT cases_violation_event_id_key UNIQUE (violation_event_id)
);
CREATE INDEX cases_list ON cases.cases (county_code, created_at DESC, id DESC);
CREATE INDEX cases_node ON cases.cases (node_code text_pattern_ops);
CREATE INDEX cases_overdue ON cases.cases (deadline) WHERE state IN ('dispatched', 'in_progress');
CREATE INDEX cases_open_supervisor ON cases.cases (supervisor_id) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_handler ON cases.cases (handler_id) WHERE state NOT IN ('closed', 'rejected');

-- The timeline: one row per transition, its id the client's request id so
-- a retried request is recognised. Never changed once written.
CREATE TABLE cases.transitions (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    case_id         uuid NOT NULL REFERENCES cases.cases (id),
    action          text NOT NULL,
    from_state      text NOT NULL,
    to_state        text NOT NULL,
    actor_id        text NOT NULL,
    actor_role      text NOT NULL,
    actor_node_code text NOT NULL,
    note            text NOT NULL DEFAULT '',
    details         jsonb NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transitions_case ON cases.transitions (case_id, seq);

-- +goose StatementBegin
CREATE FUNCTION cases.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cases.transitions is append-only';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER transitions_append_only BEFORE UPDATE OR DELETE ON cases.transitions
    FOR EACH ROW EXECUTE FUNCTION cases.refuse_change();
CREATE TRIGGER transitions_no_truncate BEFORE TRUNCATE ON cases.transitions
    FOR EACH STATEMENT EXECUTE FUNCTION cases.refuse_change();

-- Events consumed, by event id (Nats-Msg-Id), written in the transaction
-- that acts on them: a redelivered or republished event changes nothing.
CREATE TABLE cases.inbox (
    event_id    uuid PRIMARY KEY,
    subject     text NOT NULL,
    -- jetstream or reconciler
    source      text NOT NULL,
    stream_seq  bigint,
    case_id     uuid,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE IF EXISTS cases.inbox;
DROP TABLE IF EXISTS cases.transitions;
DROP FUNCTION IF EXISTS cases.refuse_change();
DROP TABLE IF EXISTS cases.cases;
DROP TABLE IF EXISTS cases.deadline_rules;
DROP INDEX IF EXISTS outbox.outbox_events_violations;
DROP TRIGGER IF EXISTS events_notify_relays ON outbox.events;
DROP FUNCTION IF EXISTS outbox.notify_relays();
