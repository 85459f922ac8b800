-- Sync demand (issue 22): a (connection, day) that something said has changed — a webhook event
-- or the catch-up's export feeds — is wanted until a run's extraction that BEGAN after that moment
-- has been registered. Run requests can be skipped (a run was already waiting), fail (a step
-- failed on ServiceTitan's 503), or be lost with a sensor tick (the database restarted while it
-- was submitting); the demand outlives all of them, and the retry sensor asks again for any day
-- whose demand is older than the stranded interval with no run waiting or under way.

CREATE TABLE sync_demand (
    connection    TEXT        NOT NULL,
    day           DATE        NOT NULL,
    wanted_at     TIMESTAMPTZ NOT NULL,            -- the latest moment a change was known
    satisfied_at  TIMESTAMPTZ,                     -- start of the latest extraction registered
    requests      INTEGER     NOT NULL DEFAULT 0,  -- re-requests since it was last satisfied
    requested_at  TIMESTAMPTZ,
    PRIMARY KEY (connection, day)
);
CREATE INDEX sync_demand_open ON sync_demand (wanted_at) WHERE satisfied_at IS NULL OR satisfied_at < wanted_at;
