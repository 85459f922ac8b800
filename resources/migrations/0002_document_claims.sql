-- Claims are leases on documents, not on record versions (issue 22): one row per ServiceTitan
-- document being posted, whatever its versions, with a fencing token that changes with every new
-- holder. A holder whose lease lapsed (or was taken over) can neither post nor record an outcome.

CREATE SEQUENCE claim_tokens;

CREATE TABLE document_claims (
    connection     TEXT        NOT NULL,
    source_type    TEXT        NOT NULL,
    source_id      TEXT        NOT NULL,
    claimed_by     TEXT        NOT NULL,
    claim_token    BIGINT      NOT NULL,
    lease_seconds  FLOAT8      NOT NULL,
    claimed_until  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection, source_type, source_id)
);
CREATE INDEX document_claims_by_holder ON document_claims (claimed_by);

-- the version a holder works on carries the holder's token, so the record it returns can be fenced
ALTER TABLE records ADD COLUMN claim_token BIGINT;
