//! The audit log: security-relevant events kept in the database (logins and failures, password
//! resets and changes, blocks, admin actions). Recording never fails the action it records.

use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::{self, DbConn};
use crate::error::ApiResult;
use crate::state::AppState;

/// One event to record.
pub struct Event<'a> {
    pub action: &'static str,
    pub actor: Option<i64>,
    pub subject: Option<i64>,
    pub address: Option<&'a str>,
    pub detail: String,
}

pub fn insert(conn: &mut DbConn, event: &Event<'_>) -> ApiResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::action.eq(event.action),
            audit_log::actor_id.eq(event.actor),
            audit_log::subject_id.eq(event.subject),
            audit_log::address.eq(event.address),
            audit_log::detail.eq(&event.detail),
            audit_log::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records `event`; a failure is logged, not returned.
pub async fn record(state: &AppState, event: Event<'_>) {
    let (action, actor, subject, address, detail) =
        (event.action, event.actor, event.subject, event.address.map(str::to_owned), event.detail);
    let stored = state.db.run(move |conn| insert(conn, &Event { action, actor, subject, address: address.as_deref(), detail })).await;
    if let Err(error) = stored {
        tracing::error!(action, error = format!("{error:?}"), "audit log write failed");
    }
}
