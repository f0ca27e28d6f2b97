-- Which API key created a request, so that the pending cap per key holds inside the creating
-- statement. Requests made before this column existed have none and count for no key.
ALTER TABLE requests ADD COLUMN api_key_id TEXT;
CREATE INDEX requests_by_api_key_state ON requests (api_key_id, state);
