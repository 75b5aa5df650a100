//! Administration: finding users, deactivating and reactivating accounts, and reading the audit
//! log. Callers are checked to be administrators by the `AdminUser` extractor.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::User;
use crate::db::sessions::RevokeReason;
use crate::db::{self, write_tx};
use crate::dto::utc;
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;
use crate::services::accounts::sessions_ended;
use crate::services::audit::Event;
use crate::state::State;

/// A user as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_admin: bool,
    pub email_verified: bool,
    pub date_joined: DateTime<Utc>,
}

impl From<User> for AdminUserView {
    fn from(u: User) -> Self {
        AdminUserView {
            id: u.id.get(),
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_active: u.is_active,
            is_admin: u.is_admin,
            email_verified: u.email_verified,
            date_joined: utc(u.date_joined),
        }
    }
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub action: String,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub address: Option<String>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

/// Users by id, or those whose username or email starts with `query` (any case).
pub async fn list_users(state: &State, query: Option<String>, limit: i64, offset: i64) -> ApiResult<Vec<AdminUserView>> {
    state
        .db
        .run(move |conn| {
            let prefix = query.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()).map(|query| {
                let upper = crate::services::contacts::prefix_upper_bound(&query).unwrap_or_default();
                (query, upper)
            });
            Ok(db::users::page(conn, prefix, limit, offset)?.into_iter().map(AdminUserView::from).collect())
        })
        .await
}

/// Deactivates or reactivates an account. Deactivation ends every session at once (tokens
/// and open sockets). Administrators cannot deactivate themselves.
pub async fn set_active(state: &State, admin: UserId, user_id: UserId, active: bool) -> ApiResult<AdminUserView> {
    if admin == user_id && !active {
        return Err(ApiError::Conflict("administrators cannot deactivate themselves".into()));
    }
    let user = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                if !db::users::set_active(conn, user_id, active)? {
                    return Err(ApiError::NotFound("user not found".into()));
                }
                if !active {
                    db::sessions::revoke_all(conn, user_id, None, RevokeReason::Deactivated)?;
                }
                db::audit::insert(
                    conn,
                    &Event {
                        action: if active { "admin_activate" } else { "admin_deactivate" },
                        actor: Some(admin),
                        subject: Some(user_id),
                        address: None,
                        detail: String::new(),
                    },
                )?;
                // Updated above in this transaction, so it is there.
                db::users::find(conn, user_id)?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("user {user_id} vanished")))
            })
        })
        .await?;
    if !active {
        sessions_ended(state, user_id, None, None);
    }
    Ok(user.into())
}

/// The audit log, newest first.
pub async fn audit_log(state: &State, limit: i64, offset: i64) -> ApiResult<Vec<AuditEntry>> {
    state
        .db
        .run(move |conn| {
            let rows = db::audit::page(conn, limit, offset)?;
            Ok(rows
                .into_iter()
                .map(|(id, action, actor_id, subject_id, address, detail, created)| AuditEntry {
                    id,
                    action,
                    actor_id,
                    subject_id,
                    address,
                    detail,
                    created_at: utc(created),
                })
                .collect())
        })
        .await
}
