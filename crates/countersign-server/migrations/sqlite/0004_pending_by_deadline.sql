-- The pending list and the expiry sweep read pending requests by approval deadline.
CREATE INDEX requests_by_state_deadline ON requests (state, approve_by);
