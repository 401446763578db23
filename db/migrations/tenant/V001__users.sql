-- Tenant schema: the tenant's users. An id equals the account id of a person who can
-- log in; directory-only entries get a random id. Emails are stored lower-cased.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL CHECK (email = lower(email)),
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_newest_idx ON users (created_at DESC, id DESC);
