//! Administration: finding users, deactivating and reactivating accounts, and reading the audit
//! log. Callers are checked to be administrators by the `AdminUser` extractor.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::sessions::{self, RevokeReason};
use crate::db::models::User;
use crate::db::schema::{audit_log, users};
use crate::dto::utc;
use crate::error::{ApiError, ApiResult};
use crate::services::accounts::sessions_ended;
use crate::services::audit::{self, Event};
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
            id: u.id,
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
            let mut select = users::table.select(User::as_select()).order(users::id).limit(limit).offset(offset).into_boxed();
            if let Some(query) = query.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()) {
                let upper = crate::services::contacts::prefix_upper_bound(&query).unwrap_or_default();
                select = select.filter(
                    (users::username_key.ge(query.clone()).and(users::username_key.lt(upper.clone())))
                        .or(users::email.ge(query).and(users::email.lt(upper))),
                );
            }
            Ok(select.load::<User>(conn)?.into_iter().map(AdminUserView::from).collect())
        })
        .await
}

/// Deactivates or reactivates an account. Deactivation ends every session at once (tokens
/// and open sockets). Administrators cannot deactivate themselves.
pub async fn set_active(state: &State, admin: i64, user_id: i64, active: bool) -> ApiResult<AdminUserView> {
    if admin == user_id && !active {
        return Err(ApiError::Conflict("administrators cannot deactivate themselves".into()));
    }
    let user = state
        .db
        .run(move |conn| {
            crate::db::write_tx(conn, |conn| {
                let updated = diesel::update(users::table.find(user_id)).set(users::is_active.eq(active)).execute(conn)?;
                if updated == 0 {
                    return Err(ApiError::NotFound("user not found".into()));
                }
                if !active {
                    sessions::revoke_all(conn, user_id, None, RevokeReason::Deactivated)?;
                }
                audit::insert(
                    conn,
                    &Event {
                        action: if active { "admin_activate" } else { "admin_deactivate" },
                        actor: Some(admin),
                        subject: Some(user_id),
                        address: None,
                        detail: String::new(),
                    },
                )?;
                Ok(users::table.find(user_id).select(User::as_select()).first(conn)?)
            })
        })
        .await?;
    if !active {
        sessions_ended(state, user_id, None, None);
    }
    Ok(user.into())
}

/// An audit log row: id, action, actor, subject, address, detail, time.
type AuditRow = (i64, String, Option<i64>, Option<i64>, Option<String>, String, NaiveDateTime);

/// The audit log, newest first.
pub async fn audit_log(state: &State, limit: i64, offset: i64) -> ApiResult<Vec<AuditEntry>> {
    state
        .db
        .run(move |conn| {
            let rows: Vec<AuditRow> = audit_log::table
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
                .load(conn)?;
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
