//! The `ai_conversations` and `ai_messages` tables: the assistant's conversations and their turns.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{ai_conversations, ai_messages};
use crate::error::ApiResult;
use crate::ids::UserId;

/// A stored turn: id, conversation, role, content, tokens, time.
pub type TurnRow = (i64, i64, String, String, i64, NaiveDateTime);

/// A conversation: id, title, created, last used.
pub type ConversationRow = (i64, String, NaiveDateTime, NaiveDateTime);

/// The owner of conversation `id`, if it exists.
pub fn owner(conn: &mut DbConn, id: i64) -> ApiResult<Option<UserId>> {
    Ok(ai_conversations::table.find(id).select(ai_conversations::user_id).first(conn).optional()?)
}

/// The last `n` turns (role, content) of conversation `id`, oldest first.
pub fn recent_turns(conn: &mut DbConn, id: i64, n: i64) -> ApiResult<Vec<(String, String)>> {
    let mut turns: Vec<(String, String)> = ai_messages::table
        .filter(ai_messages::conversation_id.eq(id))
        .order(ai_messages::id.desc())
        .limit(n)
        .select((ai_messages::role, ai_messages::content))
        .load(conn)?;
    turns.reverse();
    Ok(turns)
}

/// Marks conversation `id` used at `now`.
pub fn touch(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> ApiResult<()> {
    diesel::update(ai_conversations::table.find(id)).set(ai_conversations::updated_at.eq(now)).execute(conn)?;
    Ok(())
}

/// Stores a new conversation of `user_id` and returns its id.
pub fn insert(conn: &mut DbConn, user_id: UserId, title: &str, now: NaiveDateTime) -> ApiResult<i64> {
    Ok(diesel::insert_into(ai_conversations::table)
        .values((
            ai_conversations::user_id.eq(user_id),
            ai_conversations::title.eq(title),
            ai_conversations::created_at.eq(now),
            ai_conversations::updated_at.eq(now),
        ))
        .returning(ai_conversations::id)
        .get_result(conn)?)
}

/// Stores one turn of conversation `conversation_id`.
pub fn insert_turn(
    conn: &mut DbConn,
    conversation_id: i64,
    user_id: UserId,
    role: &str,
    content: &str,
    tokens: i64,
    now: NaiveDateTime,
) -> ApiResult<()> {
    diesel::insert_into(ai_messages::table)
        .values((
            ai_messages::conversation_id.eq(conversation_id),
            ai_messages::user_id.eq(user_id),
            ai_messages::role.eq(role),
            ai_messages::content.eq(content),
            ai_messages::tokens.eq(tokens),
            ai_messages::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A page of `user_id`'s turns, oldest first; only conversation `conversation_id`'s when given.
pub fn turns_page(conn: &mut DbConn, user_id: UserId, conversation_id: Option<i64>, limit: i64, offset: i64) -> ApiResult<Vec<TurnRow>> {
    let mut select = ai_messages::table
        .filter(ai_messages::user_id.eq(user_id))
        .order(ai_messages::id.asc())
        .limit(limit)
        .offset(offset)
        .select((
            ai_messages::id,
            ai_messages::conversation_id,
            ai_messages::role,
            ai_messages::content,
            ai_messages::tokens,
            ai_messages::created_at,
        ))
        .into_boxed();
    if let Some(conversation_id) = conversation_id {
        select = select.filter(ai_messages::conversation_id.eq(conversation_id));
    }
    Ok(select.load(conn)?)
}

/// Up to `n` of `user_id`'s conversations, most recently used first.
pub fn recent(conn: &mut DbConn, user_id: UserId, n: i64) -> ApiResult<Vec<ConversationRow>> {
    Ok(ai_conversations::table
        .filter(ai_conversations::user_id.eq(user_id))
        .order((ai_conversations::updated_at.desc(), ai_conversations::id.desc()))
        .limit(n)
        .select((ai_conversations::id, ai_conversations::title, ai_conversations::created_at, ai_conversations::updated_at))
        .load(conn)?)
}
