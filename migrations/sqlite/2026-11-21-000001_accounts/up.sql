-- Accounts: users, login sessions (refresh-token families) and one-time email tokens.
-- Timestamps are UTC. Mirrored in migrations/postgres with the same folder name.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: ids of deleted users are never reused
    username       TEXT    NOT NULL,
    username_key   TEXT    NOT NULL,                  -- lower-cased username: uniqueness and prefix search
    first_name     TEXT    NOT NULL DEFAULT '',
    last_name      TEXT    NOT NULL DEFAULT '',
    first_name_key TEXT    NOT NULL DEFAULT '',    -- lower-cased names: prefix search
    last_name_key  TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL,                  -- normalised to lower case
    bio            TEXT    NOT NULL DEFAULT '',
    password_hash  TEXT    NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    is_active      BOOLEAN NOT NULL DEFAULT TRUE,
    date_joined    TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_username_key_uq ON users (username_key);
CREATE UNIQUE INDEX users_email_uq ON users (email);
CREATE INDEX users_first_name_key_idx ON users (first_name_key, id);
CREATE INDEX users_last_name_key_idx ON users (last_name_key, id);

-- One login on one device. The refresh token carries the session id (its family) and a jti;
-- only `refresh_jti` may be exchanged, and presenting any other jti of the family revokes it.
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti   TEXT    NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP,
    revoke_reason TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Password-reset and email-verification tokens: only a SHA-256 of the token is stored.
CREATE TABLE one_time_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,
    token_hash TEXT    NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE UNIQUE INDEX one_time_tokens_hash_uq ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);
