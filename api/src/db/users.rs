//! The `users` table: look-ups of the public columns and of who is active.

use std::collections::HashMap;

use diesel::prelude::*;

use super::DbConn;
use super::models::PublicUserRow;
use super::schema::users;
use crate::error::{ApiError, ApiResult};

/// The public rows of `ids`, keyed by id. On SQLite (in this process) a point look-up per id
/// reuses one prepared statement, where a list of ids would be parsed anew for every call; on
/// PostgreSQL one query takes the whole list as an array parameter.
pub fn public_rows(conn: &mut DbConn, ids: &[i64]) -> ApiResult<HashMap<i64, PublicUserRow>> {
    let rows: Vec<PublicUserRow> = match conn {
        DbConn::Sqlite(c) => {
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(users::table.find(id).select(PublicUserRow::as_select()).first(c).optional()?);
            }
            rows
        }
        DbConn::Pg(c) => users::table.filter(users::id.eq_any(ids)).select(PublicUserRow::as_select()).load(c)?,
    };
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

/// Whether `id` names an active account.
pub fn active_exists(conn: &mut DbConn, id: i64) -> ApiResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(users::table.filter(users::id.eq(id)).filter(users::is_active.eq(true)))).get_result(conn)?)
}

/// The public columns of the active user `id`, or 404.
pub fn active_public(conn: &mut DbConn, id: i64) -> ApiResult<PublicUserRow> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::is_active.eq(true))
        .select(PublicUserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}
