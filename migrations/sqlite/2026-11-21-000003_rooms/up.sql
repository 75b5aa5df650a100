-- Rooms, members, messages and the room event log. Mirrored in migrations/postgres.

CREATE TABLE rooms (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,                 -- private or group
    name             TEXT NOT NULL DEFAULT '',
    owner_id         INTEGER REFERENCES users (id) ON DELETE SET NULL,
    private_key      TEXT UNIQUE,                   -- "low:high" user ids: one private room per pair
    last_seq         INTEGER NOT NULL DEFAULT 0,       -- seq of the newest message; the next is last_seq + 1
    last_activity_at TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL
);

CREATE TABLE room_members (
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL,                    -- owner or member
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id);

-- seq is per room, assigned in the storing transaction from rooms.last_seq: strictly
-- increasing, no gaps. (room_id, sender_id, client_id) makes a retried send a no-op.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    sender_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    edited_at  TIMESTAMP,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX messages_room_seq_uq ON messages (room_id, seq);
CREATE UNIQUE INDEX messages_client_uq ON messages (room_id, sender_id, client_id);

-- Everything that happened to a room besides messages: created, member_added, member_left,
-- owner_changed. Kept for history and audit.
CREATE TABLE room_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    actor_id   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    kind       TEXT NOT NULL,
    subject_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX room_events_room_idx ON room_events (room_id, id);
