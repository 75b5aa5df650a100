-- The AI assistant: token accounts, in-flight reservations, conversations and their messages.
-- Mirrored in migrations/postgres.

-- granted: tokens given to the user; used: tokens charged. available = granted - used - the
-- sum of live reservations, and never below zero.
CREATE TABLE ai_accounts (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted INTEGER NOT NULL,
    used    INTEGER NOT NULL DEFAULT 0,
    CHECK (used >= 0 AND used <= granted)
);

-- Tokens set aside for a request in flight, released when it settles. A reservation left by a
-- crash stops counting once it is older than any request can last.
CREATE TABLE ai_reservations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount     INTEGER NOT NULL CHECK (amount > 0),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ai_reservations_user_idx ON ai_reservations (user_id, created_at);

CREATE TABLE ai_conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX ai_conversations_user_idx ON ai_conversations (user_id, updated_at);

CREATE TABLE ai_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES ai_conversations (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,   -- user or assistant
    content         TEXT NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX ai_messages_conversation_idx ON ai_messages (conversation_id, id);
CREATE INDEX ai_messages_user_idx ON ai_messages (user_id, id);
