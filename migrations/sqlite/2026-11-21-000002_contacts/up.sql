-- Contacts: friend requests, friendships and blocks. Mirrored in migrations/postgres.

-- A request from sender to receiver. (user_low, user_high) is the unordered pair: the partial
-- unique index allows one pending request per pair, so two users asking each other at the
-- same instant cannot both store a request (the second one finds the first and accepts it).
CREATE TABLE friend_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    receiver_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_low     INTEGER NOT NULL,
    user_high    INTEGER NOT NULL,
    status       TEXT NOT NULL,   -- pending, accepted, rejected, cancelled
    created_at   TIMESTAMP NOT NULL,
    responded_at TIMESTAMP,
    CHECK (sender_id <> receiver_id),
    CHECK (user_low < user_high)
);
CREATE UNIQUE INDEX friend_requests_pending_pair_uq ON friend_requests (user_low, user_high) WHERE status = 'pending';
CREATE INDEX friend_requests_receiver_idx ON friend_requests (receiver_id, status);
CREATE INDEX friend_requests_sender_idx ON friend_requests (sender_id, status);

-- A friendship is stored once in each direction, so "friends of X" is one index range.
CREATE TABLE friendships (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);
CREATE INDEX friendships_friend_idx ON friendships (friend_id);

CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);
