-- Consent to join a tenant: a tenant created without an owner carries a single-use claim
-- token (only its SHA-256 is stored) until a registration with it makes the first owner;
-- invitations can be revoked.
ALTER TABLE tenants
    ADD COLUMN claim_token_hash bytea UNIQUE,
    ADD COLUMN claim_expires_at timestamptz;

ALTER TABLE invitations ADD COLUMN revoked_at timestamptz;
