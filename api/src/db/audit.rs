//! The `audit_log` table: security-relevant events, appended and read newest first.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_log;
use super::{DbConn, now};
use crate::error::ApiResult;
use crate::ids::UserId;

/// One event to record.
pub struct Event<'a> {
    pub action: &'static str,
    pub actor: Option<UserId>,
    pub subject: Option<UserId>,
    pub address: Option<&'a str>,
    pub detail: String,
}

/// An audit log row: id, action, actor, subject, address, detail, time.
pub type AuditRow = (i64, String, Option<i64>, Option<i64>, Option<String>, String, NaiveDateTime);

/// Appends `event`, stamped now.
pub fn insert(conn: &mut DbConn, event: &Event<'_>) -> ApiResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::action.eq(event.action),
            audit_log::actor_id.eq(event.actor),
            audit_log::subject_id.eq(event.subject),
            audit_log::address.eq(event.address),
            audit_log::detail.eq(&event.detail),
            audit_log::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A page of the log, newest first.
pub fn page(conn: &mut DbConn, limit: i64, offset: i64) -> ApiResult<Vec<AuditRow>> {
    Ok(audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .offset(offset)
        .select((
            audit_log::id,
            audit_log::action,
            audit_log::actor_id,
            audit_log::subject_id,
            audit_log::address,
            audit_log::detail,
            audit_log::created_at,
        ))
        .load(conn)?)
}
