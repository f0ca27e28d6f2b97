-- Approvers, their devices and FIDO credentials, enrollment codes, device-request nonces,
-- approvals and decisions.

CREATE TABLE approvers (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE group_members (
    group_name   TEXT NOT NULL,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    PRIMARY KEY (group_name, approver_id)
);

CREATE TABLE enrollment_codes (
    code_hash    TEXT PRIMARY KEY,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);

CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    name         TEXT NOT NULL,
    device_key   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    disabled_at  INTEGER
);

CREATE TABLE credentials (
    id           BLOB PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (id),
    approver_id  TEXT NOT NULL REFERENCES approvers (id),
    public_key   BLOB NOT NULL,
    aaguid       BLOB NOT NULL,
    sign_count   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    cloned_at    INTEGER
);

CREATE TABLE device_nonces (
    device_id   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE TABLE approvals (
    request_id     TEXT NOT NULL REFERENCES requests (id),
    approver_id    TEXT NOT NULL,
    role           TEXT NOT NULL,
    decision       TEXT NOT NULL,
    credential_id  BLOB NOT NULL,
    user_verified  INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

ALTER TABLE requests ADD COLUMN decision_token TEXT;
ALTER TABLE requests ADD COLUMN decision_exp INTEGER;
