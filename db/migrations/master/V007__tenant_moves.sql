-- Online moves of a tenant's database from one database server to another (issue 13): a
-- durable state machine any tenantd process can resume after a crash.
-- - state: copying (target database made, subscription copying) -> catching_up (initial copy
--   done, replication following) -> cutover (writes held, source locked; `flipped_at` set
--   once tenants.db_server names the target, in the same master transaction) -> done, or
--   aborted with `error`. Before the flip a move can only be aborted (the tenant stays on
--   the source); after it, only finished.
-- - owner/heartbeat_at: the process driving the move renews its lease; a move whose lease
--   ran out is taken over (and finished or aborted) by any process.
-- - source_drop_after: when `done`, the source database is dropped after this time unless
--   keep_source; source_dropped_at records that it was.
-- One move at a time per tenant: the partial unique index makes a second start a conflict.
CREATE TABLE tenant_moves (
    id                 uuid PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id),
    from_server        text NOT NULL,
    to_server          text NOT NULL,
    database_name      text NOT NULL,
    state              text NOT NULL DEFAULT 'copying'
                       CHECK (state IN ('copying', 'catching_up', 'cutover', 'done', 'aborted')),
    error              text,
    attempts           integer NOT NULL DEFAULT 0,     -- cut-overs tried
    freeze_ms          double precision,               -- the write freeze of the cut-over that flipped
    keep_source        boolean NOT NULL DEFAULT false,
    owner              text,
    heartbeat_at       timestamptz,
    started_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    flipped_at         timestamptz,
    finished_at        timestamptz,
    source_drop_after  timestamptz,
    source_dropped_at  timestamptz,
    CHECK (from_server <> to_server)
);
CREATE UNIQUE INDEX tenant_moves_one_active ON tenant_moves (tenant_id) WHERE state NOT IN ('done', 'aborted');
CREATE INDEX tenant_moves_started_idx ON tenant_moves (started_at DESC);
CREATE INDEX tenant_moves_tenant_idx ON tenant_moves (tenant_id);
