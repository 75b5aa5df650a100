-- The refresh jti a rotation replaced, and when: presented again within REFRESH_REUSE_GRACE it is
-- answered with the session's current pair (a client whose response was lost retries safely).
ALTER TABLE sessions ADD COLUMN previous_refresh_jti TEXT;
ALTER TABLE sessions ADD COLUMN rotated_at TIMESTAMP;
