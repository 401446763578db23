-- PostgreSQL servers tenant databases are placed on (issue 13). V001 made db_servers as a
-- placeholder; this gives it what placement and routing need:
-- - name: the API's name rule (dashes allowed), referenced by tenants.db_server;
-- - url: the postgresql:// URL given when the server was added, with its credentials (the
--   password is needed to connect; never returned or logged). NULL for `main`, whose
--   connection is DB_HOST/DB_PORT/DB_USERNAME/DB_PASSWORD of each process's configuration;
-- - state: active (takes new tenants), draining (keeps its tenants, takes no new ones),
--   disabled; weight and max_tenants for placement (tenants ÷ weight, lowest first).
-- `main` exists from the start; its host and port are recorded by each process at start-up
-- (the values here are placeholders until then). Tenants name their server: the NULLs of
-- earlier versions become 'main'. The column stays nullable: removing a server keeps the rows
-- of its deleted tenants (ids are never reused) and clears their server.
ALTER TABLE db_servers RENAME COLUMN id TO name;
ALTER TABLE db_servers DROP CONSTRAINT db_servers_id_check;
ALTER TABLE db_servers ADD CONSTRAINT db_servers_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}$');
ALTER TABLE db_servers DROP COLUMN accepting;
ALTER TABLE db_servers
    ADD COLUMN url         text,
    ADD COLUMN state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'disabled')),
    ADD COLUMN weight      integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000000),
    ADD COLUMN max_tenants integer CHECK (max_tenants IS NULL OR max_tenants >= 0),
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();

INSERT INTO db_servers (name, host, port) VALUES ('main', 'localhost', 5432) ON CONFLICT DO NOTHING;

UPDATE tenants SET db_server = 'main' WHERE db_server IS NULL;
ALTER TABLE tenants ALTER COLUMN db_server SET DEFAULT 'main';
CREATE INDEX tenants_db_server_idx ON tenants (db_server);

-- Each server has its own template database: its state is kept per server.
ALTER TABLE template_state ADD COLUMN db_server text NOT NULL DEFAULT 'main';
ALTER TABLE template_state DROP CONSTRAINT template_state_pkey;
ALTER TABLE template_state ADD PRIMARY KEY (db_server, database_name);
