-- The requesters an API key may ask step-ups for (JSON array of patterns: an exact id,
-- `*@domain`, `prefix-*` or `*`). Keys made before this column existed keep speaking for any
-- requester, as they did; `api-key create` now asks for the patterns.
ALTER TABLE api_keys ADD COLUMN requesters TEXT NOT NULL DEFAULT '["*"]';
