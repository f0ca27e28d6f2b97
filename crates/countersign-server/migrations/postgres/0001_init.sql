-- Countersign schema (PostgreSQL), the same tables as the SQLite schema after its migration
-- 0009. Times are Unix seconds; digests and ids as the SQLite backend stores them, so that an
-- export reads the same from either.

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    seed        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

CREATE TABLE key_rollovers (
    new_kid     TEXT PRIMARY KEY,
    rollover    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    audience     TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    requesters   TEXT NOT NULL DEFAULT '["*"]'
);

CREATE TABLE requests (
    id                TEXT PRIMARY KEY,
    audience          TEXT NOT NULL,
    requester_id      TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    transaction_json  TEXT NOT NULL,
    digest            TEXT NOT NULL,
    state             TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    approve_by        BIGINT NOT NULL,
    execute_by        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    decision_token    TEXT,
    decision_exp      BIGINT,
    api_key_id        TEXT,
    UNIQUE (audience, idempotency_key)
);
CREATE INDEX requests_by_requester_state ON requests (requester_id, state);
CREATE INDEX requests_by_state_deadline ON requests (state, approve_by);
CREATE INDEX requests_by_api_key_state ON requests (api_key_id, state);

-- The chain: one row per entry; `seq` is the entry's own, so two writers can never both
-- append the same position.
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    entry_json  TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE approvers (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE group_members (
    group_name   TEXT NOT NULL,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    PRIMARY KEY (group_name, approver_id)
);

CREATE TABLE enrollment_codes (
    code_hash    TEXT PRIMARY KEY,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    name         TEXT NOT NULL,
    device_key   BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    disabled_at  BIGINT
);

CREATE TABLE credentials (
    id           BYTEA PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (id),
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    public_key   BYTEA NOT NULL,
    aaguid       BYTEA NOT NULL,
    sign_count   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    cloned_at    BIGINT,
    attestation  TEXT NOT NULL DEFAULT 'unverified'
);

CREATE TABLE device_nonces (
    device_id   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX device_nonces_by_expiry ON device_nonces (expires_at);

CREATE TABLE approvals (
    request_id         TEXT NOT NULL REFERENCES requests (id),
    approver_id        TEXT NOT NULL,
    role               TEXT NOT NULL,
    decision           TEXT NOT NULL,
    credential_id      BYTEA NOT NULL,
    user_verified      BOOLEAN NOT NULL,
    created_at         BIGINT NOT NULL,
    hardware_attested  BOOLEAN NOT NULL DEFAULT FALSE,
    groups             TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (request_id, approver_id)
);

CREATE TABLE requester_freezes (
    requester_id  TEXT PRIMARY KEY,
    frozen_at     BIGINT NOT NULL,
    reported_by   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    reason        TEXT
);
