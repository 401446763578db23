-- Per-tenant usage by minute (GET /admin/usage). Every tenantd process adds what it counted
-- with INSERT ... ON CONFLICT DO UPDATE, so one row holds the sum over all processes. No
-- foreign key to tenants: usage stays billable after the tenant is deleted, until
-- USAGE_RETENTION_DAYS removes it.
CREATE TABLE tenant_usage (
    tenant_id        text NOT NULL,
    minute           timestamptz NOT NULL,          -- start of the minute, UTC
    requests         bigint NOT NULL DEFAULT 0,
    errors_4xx       bigint NOT NULL DEFAULT 0,
    errors_5xx       bigint NOT NULL DEFAULT 0,
    latency_buckets  bigint[] NOT NULL,             -- requests per latency bucket (domain/usage.hpp)
    statements       bigint NOT NULL DEFAULT 0,
    db_time_us       bigint NOT NULL DEFAULT 0,
    connections_max  bigint NOT NULL DEFAULT 0,     -- the most connections seen held at a sample
    db_size_bytes    bigint,                        -- largest sample in the minute, if one was taken
    last_activity    timestamptz,
    PRIMARY KEY (tenant_id, minute)
);
-- Range queries over all tenants and the retention delete.
CREATE INDEX tenant_usage_minute_idx ON tenant_usage (minute);
