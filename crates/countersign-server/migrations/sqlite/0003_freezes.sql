-- Requesters frozen after an approver reported one of their requests as suspicious. While a
-- row exists, the requester can create no request; an operator lifts it with
-- `countersign-server requester unfreeze`.

CREATE TABLE requester_freezes (
    requester_id  TEXT PRIMARY KEY,
    frozen_at     INTEGER NOT NULL,
    reported_by   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    reason        TEXT
);
