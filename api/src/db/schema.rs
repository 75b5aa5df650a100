//! The schema in portable diesel types, shared by the SQLite and PostgreSQL backends.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        username_key -> Text,
        first_name -> Text,
        last_name -> Text,
        first_name_key -> Text,
        last_name_key -> Text,
        email -> Text,
        bio -> Text,
        password_hash -> Text,
        email_verified -> Bool,
        is_admin -> Bool,
        is_active -> Bool,
        date_joined -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> BigInt,
        refresh_jti -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoke_reason -> Nullable<Text>,
        previous_refresh_jti -> Nullable<Text>,
        rotated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    one_time_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        purpose -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    friend_requests (id) {
        id -> BigInt,
        sender_id -> BigInt,
        receiver_id -> BigInt,
        user_low -> BigInt,
        user_high -> BigInt,
        status -> Text,
        created_at -> Timestamp,
        responded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    friendships (user_id, friend_id) {
        user_id -> BigInt,
        friend_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> BigInt,
        blocked_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ai_accounts (user_id) {
        user_id -> BigInt,
        granted -> BigInt,
        used -> BigInt,
    }
}

diesel::table! {
    ai_reservations (id) {
        id -> BigInt,
        user_id -> BigInt,
        amount -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ai_conversations (id) {
        id -> BigInt,
        user_id -> BigInt,
        title -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ai_messages (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        content -> Text,
        tokens -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(one_time_tokens -> users (user_id));

diesel::table! {
    rooms (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        owner_id -> Nullable<BigInt>,
        private_key -> Nullable<Text>,
        last_seq -> BigInt,
        last_activity_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        last_read_seq -> BigInt,
        joined_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        room_id -> BigInt,
        seq -> BigInt,
        sender_id -> BigInt,
        body -> Text,
        client_id -> Text,
        created_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    room_events (id) {
        id -> BigInt,
        room_id -> BigInt,
        actor_id -> Nullable<BigInt>,
        kind -> Text,
        subject_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(room_members -> users (user_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    one_time_tokens,
    friend_requests,
    friendships,
    blocks,
    rooms,
    room_members,
    messages,
    room_events,
    ai_accounts,
    ai_reservations,
    ai_conversations,
    ai_messages,
    audit_log,
);

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        action -> Text,
        actor_id -> Nullable<BigInt>,
        subject_id -> Nullable<BigInt>,
        address -> Nullable<Text>,
        detail -> Text,
        created_at -> Timestamp,
    }
}
