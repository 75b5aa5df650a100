//! `/api/admin/…`: administrators find users, deactivate or reactivate accounts, and read the
//! audit log. (Granting AI tokens lives with the assistant's routes.)

use actix_web::{get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::AdminUser;
use crate::ids::UserId;
use crate::services::admin::{self, AdminUserView, AuditEntry};
use crate::state::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminPage {
    /// A prefix of a username or email (users only).
    pub query: Option<String>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl AdminPage {
    fn bounds(&self) -> ApiResult<(i64, i64)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::invalid_field("limit", "must be between 1 and 200"));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid_field("offset", "must not be negative"));
        }
        Ok((limit, offset))
    }
}

/// List and search users.
#[utoipa::path(
    tag = "admin",
    params(AdminPage),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Users by id", body = [AdminUserView]),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
#[get("/api/admin/users/")]
pub async fn list_users(state: State, _admin: AdminUser, page: web::Query<AdminPage>) -> ApiResult<web::Json<Vec<AdminUserView>>> {
    let (limit, offset) = page.bounds()?;
    Ok(web::Json(admin::list_users(&state, page.into_inner().query, limit, offset).await?))
}

/// Deactivate an account: its sessions end at once, tokens and open sockets included.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deactivated user", body = AdminUserView),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Administrators cannot deactivate themselves", body = ErrorBody),
    )
)]
#[post("/api/admin/users/{id}/deactivate/")]
pub async fn deactivate_user(state: State, admin: AdminUser, id: web::Path<i64>) -> ApiResult<web::Json<AdminUserView>> {
    Ok(web::Json(admin::set_active(&state, admin.0.id, UserId(id.into_inner()), false).await?))
}

/// Reactivate an account.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reactivated user", body = AdminUserView),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
#[post("/api/admin/users/{id}/activate/")]
pub async fn activate_user(state: State, admin: AdminUser, id: web::Path<i64>) -> ApiResult<web::Json<AdminUserView>> {
    Ok(web::Json(admin::set_active(&state, admin.0.id, UserId(id.into_inner()), true).await?))
}

/// The audit log, newest first: logins, failed logins, password resets and changes, blocks,
/// admin actions.
#[utoipa::path(
    tag = "admin",
    params(AdminPage),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Entries, newest first", body = [AuditEntry]),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
#[get("/api/admin/audit-log/")]
pub async fn audit_log(state: State, _admin: AdminUser, page: web::Query<AdminPage>) -> ApiResult<web::Json<Vec<AuditEntry>>> {
    let (limit, offset) = page.bounds()?;
    Ok(web::Json(admin::audit_log(&state, limit, offset).await?))
}
