//! The `users` table: accounts, their public columns, who is active, and people search.

use std::collections::HashMap;

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::models::{NewUser, PublicUserRow, User};
use super::schema::{blocks, users};
use super::{DbConn, is_unique_violation};
use crate::domain::{Username, search_key};
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub username_key: Option<String>,
    pub first_name: Option<String>,
    pub first_name_key: Option<String>,
    pub last_name: Option<String>,
    pub last_name_key: Option<String>,
    pub bio: Option<String>,
}

impl ProfileChanges {
    /// The changes for these new values, with the search keys that go with them.
    pub fn new(username: Option<Username>, first_name: Option<String>, last_name: Option<String>, bio: Option<String>) -> Self {
        ProfileChanges {
            username_key: username.as_ref().map(Username::key),
            username: username.map(|u| u.as_str().to_owned()),
            first_name_key: first_name.as_deref().map(search_key),
            first_name,
            last_name_key: last_name.as_deref().map(search_key),
            last_name,
            bio,
        }
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.username.is_none() && self.first_name.is_none() && self.last_name.is_none() && self.bio.is_none()
    }
}

/// The public rows of `ids`, keyed by id. On SQLite (in this process) a point look-up per id
/// reuses one prepared statement, where a list of ids would be parsed anew for every call; on
/// PostgreSQL one query takes the whole list as an array parameter.
pub fn public_rows(conn: &mut DbConn, ids: &[UserId]) -> ApiResult<HashMap<UserId, PublicUserRow>> {
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

/// The public columns of user `id` (active or not), if it exists.
pub fn public_row(conn: &mut DbConn, id: UserId) -> ApiResult<Option<PublicUserRow>> {
    Ok(users::table.find(id).select(PublicUserRow::as_select()).first(conn).optional()?)
}

/// Whether `id` names an active account.
pub fn active_exists(conn: &mut DbConn, id: UserId) -> ApiResult<bool> {
    Ok(diesel::select(exists(users::table.filter(users::id.eq(id)).filter(users::is_active.eq(true)))).get_result(conn)?)
}

/// Whether `id` names an account, active or not.
pub fn exists_any(conn: &mut DbConn, id: UserId) -> ApiResult<bool> {
    Ok(diesel::select(exists(users::table.find(id))).get_result(conn)?)
}

/// The public columns of the active user `id`, or 404.
pub fn active_public(conn: &mut DbConn, id: UserId) -> ApiResult<PublicUserRow> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::is_active.eq(true))
        .select(PublicUserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}

/// The user `id`, if it exists.
pub fn find(conn: &mut DbConn, id: UserId) -> ApiResult<Option<User>> {
    Ok(users::table.find(id).select(User::as_select()).first(conn).optional()?)
}

/// The user `id`, or 404.
pub fn get(conn: &mut DbConn, id: UserId) -> ApiResult<User> {
    find(conn, id)?.ok_or_else(|| ApiError::NotFound("user not found".into()))
}

/// The user with this email, active or not.
pub fn by_email(conn: &mut DbConn, email: &str) -> ApiResult<Option<User>> {
    Ok(users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).optional()?)
}

/// The active user with this email.
pub fn active_by_email(conn: &mut DbConn, email: &str) -> ApiResult<Option<User>> {
    Ok(users::table.filter(users::email.eq(email)).filter(users::is_active.eq(true)).select(User::as_select()).first(conn).optional()?)
}

/// The id of the active user with this email, unless it is `except`.
pub fn active_id_by_email_except(conn: &mut DbConn, email: &str, except: UserId) -> ApiResult<Option<UserId>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .filter(users::is_active.eq(true))
        .filter(users::id.ne(except))
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// Whether an account has this email.
pub fn email_taken(conn: &mut DbConn, email: &str) -> ApiResult<bool> {
    Ok(diesel::select(exists(users::table.filter(users::email.eq(email)))).get_result(conn)?)
}

/// Whether an account has this username key.
pub fn username_key_taken(conn: &mut DbConn, key: &str) -> ApiResult<bool> {
    Ok(diesel::select(exists(users::table.filter(users::username_key.eq(key)))).get_result(conn)?)
}

/// Whether an account other than `user_id` has this username key.
pub fn username_key_taken_by_other(conn: &mut DbConn, key: &str, user_id: UserId) -> ApiResult<bool> {
    Ok(diesel::select(exists(users::table.filter(users::username_key.eq(key)).filter(users::id.ne(user_id)))).get_result(conn)?)
}

/// Stores a new account and returns its id; `None` when a unique index refused it (the
/// username or email is taken).
pub fn insert(conn: &mut DbConn, user: &NewUser<'_>) -> ApiResult<Option<UserId>> {
    match diesel::insert_into(users::table).values(user).returning(users::id).get_result(conn) {
        Ok(id) => Ok(Some(id)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Applies `changes` to user `id`; `false` when a unique index refused the username.
pub fn update_profile(conn: &mut DbConn, id: UserId, changes: &ProfileChanges) -> ApiResult<bool> {
    match diesel::update(users::table.find(id)).set(changes).execute(conn) {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets user `id`'s password hash.
pub fn set_password_hash(conn: &mut DbConn, id: UserId, hash: &str) -> ApiResult<()> {
    diesel::update(users::table.find(id)).set(users::password_hash.eq(hash)).execute(conn)?;
    Ok(())
}

/// Sets user `id`'s password hash and marks the email verified, in one update.
pub fn set_password_hash_and_verify_email(conn: &mut DbConn, id: UserId, hash: &str) -> ApiResult<()> {
    diesel::update(users::table.find(id)).set((users::password_hash.eq(hash), users::email_verified.eq(true))).execute(conn)?;
    Ok(())
}

/// Marks user `id`'s email verified.
pub fn set_email_verified(conn: &mut DbConn, id: UserId) -> ApiResult<()> {
    diesel::update(users::table.find(id)).set(users::email_verified.eq(true)).execute(conn)?;
    Ok(())
}

/// Activates or deactivates user `id`; `false` if there is no such user.
pub fn set_active(conn: &mut DbConn, id: UserId, active: bool) -> ApiResult<bool> {
    let updated = diesel::update(users::table.find(id)).set(users::is_active.eq(active)).execute(conn)?;
    Ok(updated != 0)
}

/// A page of users by id; with `prefix` (a lowercase prefix and its upper bound), only those
/// whose username key or email lies in that range.
pub fn page(conn: &mut DbConn, prefix: Option<(String, String)>, limit: i64, offset: i64) -> ApiResult<Vec<User>> {
    let mut select = users::table.select(User::as_select()).order(users::id).limit(limit).offset(offset).into_boxed();
    if let Some((query, upper)) = prefix {
        select = select.filter(
            (users::username_key.ge(query.clone()).and(users::username_key.lt(upper.clone())))
                .or(users::email.ge(query).and(users::email.lt(upper))),
        );
    }
    Ok(select.load::<User>(conn)?)
}

/// Which name a people-search prefix is matched against.
#[derive(Clone, Copy)]
pub enum NameKey {
    Username,
    FirstName,
    LastName,
}

/// Up to `n` ids of users visible to `caller` whose `key` lies in `prefix..upper`, in key order.
/// One index range scan; visibility (active, not the caller, no block either way) is checked
/// per row found.
pub fn ids_by_prefix(conn: &mut DbConn, caller: UserId, key: NameKey, prefix: &str, upper: &str, n: i64) -> ApiResult<Vec<UserId>> {
    let blocked_by_caller = blocks::table.filter(blocks::blocker_id.eq(caller)).filter(blocks::blocked_id.eq(users::id));
    let blocked_caller = blocks::table.filter(blocks::blocker_id.eq(users::id)).filter(blocks::blocked_id.eq(caller));
    let visible = users::table
        .filter(users::is_active.eq(true))
        .filter(users::id.ne(caller))
        .filter(not(exists(blocked_by_caller)))
        .filter(not(exists(blocked_caller)))
        .select(users::id)
        .limit(n)
        .into_boxed();
    let query = match key {
        NameKey::Username => {
            visible.filter(users::username_key.ge(prefix)).filter(users::username_key.lt(upper)).order(users::username_key)
        }
        NameKey::FirstName => visible
            .filter(users::first_name_key.ge(prefix))
            .filter(users::first_name_key.lt(upper))
            .order((users::first_name_key, users::id)),
        NameKey::LastName => {
            visible.filter(users::last_name_key.ge(prefix)).filter(users::last_name_key.lt(upper)).order((users::last_name_key, users::id))
        }
    };
    Ok(query.load(conn)?)
}
