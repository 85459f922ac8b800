-- The sync store: per-record truth beside Dagster's run storage.

CREATE TABLE inbox (
    id            BIGSERIAL PRIMARY KEY,
    connection    TEXT        NOT NULL,
    event_id      TEXT        NOT NULL,              -- ServiceTitan's eventId, or 'sha256:<body hash>' when absent
    event_type    TEXT        NOT NULL,
    body          BYTEA       NOT NULL,              -- the raw signed bytes, exactly as received
    headers       JSONB       NOT NULL DEFAULT '{}', -- the headers that matter (never the signature)
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    state         TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'processed', 'ignored', 'failed')),
    processed_at  TIMESTAMPTZ,
    detail        TEXT,
    UNIQUE (connection, event_id)
);
CREATE INDEX inbox_pending ON inbox (id) WHERE state = 'pending';

CREATE TABLE records (
    id              BIGSERIAL PRIMARY KEY,
    connection      TEXT        NOT NULL,
    source_type     TEXT        NOT NULL,   -- customer, vendor, invoice, payment, bill
    source_id       TEXT        NOT NULL,   -- ServiceTitan id
    content_hash    TEXT        NOT NULL,   -- hash of the canonical document this version maps to
    business_date   DATE,
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'posted', 'skipped', 'quarantined', 'failed', 'needs_review', 'superseded')),
    target_key      TEXT,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    error_class     TEXT,
    error_message   TEXT,
    payload         JSONB,
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (connection, source_type, source_id, content_hash)
);
CREATE INDEX records_by_status ON records (connection, status);
CREATE INDEX records_by_day ON records (connection, business_date);
CREATE INDEX records_by_source ON records (connection, source_type, source_id);

CREATE TABLE id_map (
    connection  TEXT        NOT NULL,
    entity      TEXT        NOT NULL,
    source_id   TEXT        NOT NULL,
    target_key  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connection, entity, source_id)
);
CREATE INDEX id_map_by_target ON id_map (connection, entity, target_key);

CREATE TABLE audit (
    id           BIGSERIAL PRIMARY KEY,
    connection   TEXT        NOT NULL,
    source_type  TEXT        NOT NULL,
    source_id    TEXT        NOT NULL,
    content_hash TEXT,
    step         TEXT        NOT NULL,  -- received, extracted, mapped, posted, skipped, failed, replayed, ...
    outcome      TEXT        NOT NULL,  -- ok, skipped, failed, quarantined, ...
    detail       JSONB       NOT NULL DEFAULT '{}',
    run_id       TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_by_record ON audit (connection, source_type, source_id, id);

-- The audit trail is append-only: no UPDATE or DELETE, ever.
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();

CREATE TABLE secrets (
    connection  TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    ciphertext  BYTEA       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connection, name)
);

CREATE TABLE cursors (
    connection  TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connection, name)
);

CREATE TABLE connection_state (
    connection     TEXT PRIMARY KEY,
    paused         BOOLEAN     NOT NULL DEFAULT false,
    paused_reason  TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
