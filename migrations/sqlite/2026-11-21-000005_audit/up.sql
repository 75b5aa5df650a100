-- The audit log: logins, failed logins, password resets, blocks and admin actions.
-- Mirrored in migrations/postgres.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    action     TEXT NOT NULL,
    actor_id   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    subject_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    address    TEXT,
    detail     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_created_idx ON audit_log (id);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_id, id);
