-- Countersign schema, version 1 (SQLite). Times are Unix seconds.

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    seed        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    audience     TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
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
    created_at        INTEGER NOT NULL,
    approve_by        INTEGER NOT NULL,
    execute_by        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (audience, idempotency_key)
);
CREATE INDEX requests_by_requester_state ON requests (requester_id, state);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    entry_json  TEXT NOT NULL,
    hash        TEXT NOT NULL
);
