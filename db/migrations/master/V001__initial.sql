-- Master schema: tenants and where they live, global accounts, memberships with roles,
-- sessions and refresh tokens, invitations. Shaped so placement on several servers,
-- per-tenant schema versions and invitation/refresh flows need no reshaping later.

CREATE TABLE db_servers (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,39}$'),
    host        text NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    accepting   boolean NOT NULL DEFAULT true,   -- new tenants may be placed here
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{2,39}$'),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status               text NOT NULL CHECK (status IN
                           ('provisioning', 'active', 'suspended', 'failed', 'deleting', 'deleted')),
    registration         text NOT NULL DEFAULT 'invite' CHECK (registration IN ('invite', 'open')),
    database_name        text NOT NULL UNIQUE,
    db_server            text REFERENCES db_servers (id),   -- NULL: the configured default server
    schema_version       integer NOT NULL DEFAULT 0,
    last_migration_at    timestamptz,
    last_migration_error text,
    status_reason        text,
    status_changed_at    timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_status_idx ON tenants (status);

CREATE TABLE roles (
    name  text PRIMARY KEY,
    rank  integer NOT NULL UNIQUE   -- higher outranks lower
);

CREATE TABLE permissions (
    name  text PRIMARY KEY
);

CREATE TABLE role_permissions (
    role        text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission  text NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

INSERT INTO roles (name, rank) VALUES ('owner', 40), ('admin', 30), ('member', 20), ('viewer', 10);
INSERT INTO permissions (name) VALUES
    ('users:read'), ('users:write'), ('users:delete'), ('members:manage'), ('tenant:read'), ('tenant:manage');
INSERT INTO role_permissions (role, permission) VALUES
    ('owner', 'users:read'), ('owner', 'users:write'), ('owner', 'users:delete'),
    ('owner', 'members:manage'), ('owner', 'tenant:read'), ('owner', 'tenant:manage'),
    ('admin', 'users:read'), ('admin', 'users:write'), ('admin', 'users:delete'),
    ('admin', 'members:manage'), ('admin', 'tenant:read'),
    ('member', 'users:read'), ('member', 'users:write'), ('member', 'tenant:read'),
    ('viewer', 'users:read'), ('viewer', 'tenant:read');

CREATE TABLE accounts (
    id                   uuid PRIMARY KEY,
    email                text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash        text NOT NULL,
    first_name           text NOT NULL,
    last_name            text NOT NULL,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        text NOT NULL REFERENCES roles (name),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id)
);
CREATE INDEX memberships_account_idx ON memberships (account_id);

CREATE TABLE sessions (
    id                 uuid PRIMARY KEY,
    account_id         uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tenant_id          text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_refreshed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    ended_at           timestamptz,
    end_reason         text,
    client_address     text
);
CREATE INDEX sessions_live_idx ON sessions (account_id, tenant_id) WHERE ended_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,            -- SHA-256 of the opaque token; the token is never stored
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz                   -- set on rotation; presenting it again revokes the session
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email        text NOT NULL CHECK (email = lower(email)),
    role         text NOT NULL REFERENCES roles (name),
    token_hash   bytea NOT NULL UNIQUE,       -- SHA-256 of the token
    invited_by   uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  uuid REFERENCES accounts (id) ON DELETE SET NULL
);
CREATE INDEX invitations_tenant_idx ON invitations (tenant_id);
