-- The per-account cap on groups owned counts an owner's rooms.
CREATE INDEX rooms_owner_idx ON rooms (owner_id);
