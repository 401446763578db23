-- The schema version the tenant template database was last migrated to. New tenants are
-- copies of the template, so this is the version they start at, whichever process (server
-- or `tenantd migrate`) migrated the template last.
CREATE TABLE template_state (
    database_name   text PRIMARY KEY,
    schema_version  integer NOT NULL,
    migrated_at     timestamptz NOT NULL DEFAULT now()
);
