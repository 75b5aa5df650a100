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

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(one_time_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, one_time_tokens, friend_requests, friendships, blocks);
