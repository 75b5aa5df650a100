//! The audit log: security-relevant events kept in the database (logins and failures, password
//! resets and changes, blocks, admin actions). Recording never fails the action it records.

pub use crate::db::audit::Event;
use crate::state::AppState;

/// Records `event`; a failure is logged, not returned.
pub async fn record(state: &AppState, event: Event<'_>) {
    let (action, actor, subject, address, detail) =
        (event.action, event.actor, event.subject, event.address.map(str::to_owned), event.detail);
    let stored = state
        .db
        .run(move |conn| crate::db::audit::insert(conn, &Event { action, actor, subject, address: address.as_deref(), detail }))
        .await;
    if let Err(error) = stored {
        tracing::error!(action, error = format!("{error:?}"), "audit log write failed");
    }
}
