-- Each rotation's endorsement: the key that signed until then signs its successor
-- (countersign-core::rollover), so approvers who pinned an older key can trust the new one.
-- Public and signed: whoever writes this table cannot forge an endorsement.
CREATE TABLE key_rollovers (
    new_kid      TEXT PRIMARY KEY,
    rollover     TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
