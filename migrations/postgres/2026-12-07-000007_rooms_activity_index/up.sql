-- The sequencer's audit reads the rooms active in the last seconds, every two seconds per node.
CREATE INDEX rooms_activity_idx ON rooms (last_activity_at);
