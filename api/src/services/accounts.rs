//! Accounts: registration, login, token refresh, logout, profile, password change and the
//! email flows (verification and password reset) built on one-time tokens.

use sha2::{Digest, Sha256};

use crate::auth::password::{hash_password, verify_password};
use crate::auth::sessions::{self, TokenPair, random_token};
use crate::auth::{AuthUser, jwt::TokenKind};
use crate::db::models::{NewUser, User};
use crate::db::one_time_tokens::Purpose;
use crate::db::sessions::RevokeReason;
pub use crate::db::users::ProfileChanges;
use crate::db::{self, DbConn, write_tx};
use crate::domain::{EmailAddress, Password, Username, search_key};
use crate::error::{ApiError, ApiResult, Reason};
use crate::ids::UserId;
use crate::mail;
use crate::ports::DomainEvent;
use crate::services::audit::{self, Event};
use crate::state::State;

/// A registration that passed every rule.
#[derive(Debug)]
pub struct Registration {
    pub username: Username,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub password: Password,
}

fn token_hash(raw: &str) -> String {
    format!("{:x}", Sha256::digest(raw.as_bytes()))
}

async fn hash_off_executor(state: &State, password: Password) -> ApiResult<String> {
    let cost = state.config.bcrypt_cost;
    crate::auth::password::on_hashing_thread(move || hash_password(password.expose(), cost)).await?
}

async fn verify_off_executor(password: String, hash: String) -> ApiResult<bool> {
    crate::auth::password::on_hashing_thread(move || verify_password(&password, &hash)).await
}

/// Stores a new one-time token for `user_id` and returns the raw token for the mail link.
fn issue_one_time_token(conn: &mut DbConn, user_id: UserId, purpose: Purpose, ttl: std::time::Duration) -> ApiResult<String> {
    let raw = random_token(32);
    db::one_time_tokens::insert(conn, user_id, purpose, &token_hash(&raw), ttl)?;
    Ok(raw)
}

/// A one-time token of `user_id` for `purpose`: its id, whether it was used, whether it expired.
fn find_one_time_token(conn: &mut DbConn, user_id: UserId, purpose: Purpose, raw: &str) -> ApiResult<Option<(i64, bool, bool)>> {
    let now = db::now();
    let row = db::one_time_tokens::find(conn, user_id, purpose, &token_hash(raw))?;
    Ok(row.map(|token| (token.id, token.used_at.is_some(), token.expires_at <= now)))
}

fn invalid_link(field: &str) -> ApiError {
    ApiError::invalid_field(field, "this link is invalid or has expired")
}

fn send_verification(state: &State, user: &User, raw_token: &str) {
    let link = state.mailer.link(&format!("/verify-email/{}/{}", user.id, raw_token));
    state.mailer.send(mail::verification_mail(&user.email, &user.username, &link));
}

/// Creates the account, starts its first session and mails a verification link.
pub async fn register(state: &State, registration: Registration) -> ApiResult<(User, TokenPair)> {
    let password_hash = hash_off_executor(state, registration.password).await?;
    let st = state.clone();
    let (user, tokens, verify_token) = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let email = registration.email.as_str();
                let username_key = registration.username.key();
                if db::users::email_taken(conn, email)? {
                    return Err(ApiError::Conflict("a user with this email already exists".into()));
                }
                if db::users::username_key_taken(conn, &username_key)? {
                    return Err(ApiError::Conflict("this username is taken".into()));
                }
                let new_user = NewUser {
                    username: registration.username.as_str(),
                    username_key: &username_key,
                    first_name: &registration.first_name,
                    last_name: &registration.last_name,
                    first_name_key: &search_key(&registration.first_name),
                    last_name_key: &search_key(&registration.last_name),
                    email,
                    password_hash: &password_hash,
                    email_verified: false,
                    is_admin: false,
                    date_joined: db::now(),
                };
                let id = db::users::insert(conn, &new_user)?
                    .ok_or_else(|| ApiError::Conflict("this username or email is already taken".into()))?;
                let verify_token = issue_one_time_token(conn, id, Purpose::VerifyEmail, st.config.verify_token_ttl)?;
                let tokens = sessions::start(conn, &st.keys, id)?;
                Ok((db::users::get(conn, id)?, tokens, verify_token))
            })
        })
        .await?;
    tracing::info!(user_id = %user.id, "user registered");
    send_verification(state, &user, &verify_token);
    Ok((user, tokens))
}

/// Checks email and password and starts a session. An unknown email costs the same bcrypt
/// check as a wrong password and gets the same answer.
pub async fn login(state: &State, email: &str, password: String, address: &str) -> ApiResult<(User, TokenPair)> {
    // Failed attempts per account, from anywhere: a guessing attack spread over many
    // addresses is slowed down; the bucket refills within a minute, so nobody is locked out.
    // The slot is taken before the password is checked, so parallel guesses cannot all pass,
    // and given back when the password was right.
    let account_key = email.trim().to_lowercase();
    state.limits.check(crate::ratelimit::LOGIN_FAILURES_PER_ACCOUNT, &account_key).await?;
    let user = match EmailAddress::parse(email) {
        Ok(email) => state.db.run(move |conn| db::users::by_email(conn, email.as_str())).await?,
        Err(_) => None,
    };
    let hash = user.as_ref().map_or_else(|| state.dummy_password_hash.clone(), |u| u.password_hash.clone());
    let matches = verify_off_executor(password, hash).await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            let subject = user.as_ref().map(|u| u.id);
            let detail = if subject.is_some() { "wrong password" } else { "unknown account" };
            audit::record(state, Event { action: "login_failed", actor: None, subject, address: Some(address), detail: detail.into() })
                .await;
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.limits.give_back(crate::ratelimit::LOGIN_FAILURES_PER_ACCOUNT, &account_key).await;
    if !user.is_active {
        return Err(ApiError::forbidden(Reason::AccountInactive, "this account has been deactivated"));
    }
    let st = state.clone();
    let user_id = user.id;
    let tokens = state.db.run(move |conn| sessions::start(conn, &st.keys, user_id)).await?;
    tracing::info!(user_id = %user_id, "user logged in");
    audit::record(
        state,
        Event { action: "login", actor: Some(user_id), subject: Some(user_id), address: Some(address), detail: String::new() },
    )
    .await;
    Ok((user, tokens))
}

/// After login sessions of `user_id` were revoked (and committed): cached token checks stop
/// counting, and their sockets close on every node — `only` that session, or all but `keep`.
pub fn sessions_ended(state: &State, user_id: UserId, only: Option<String>, keep: Option<String>) {
    state.trust.revoked();
    state.live.announce(DomainEvent::SessionsRevoked { user_id, only, keep });
}

/// Exchanges a refresh token for a new pair (rotation with reuse detection).
pub async fn refresh(state: &State, refresh_token: &str) -> ApiResult<TokenPair> {
    let claims = state.keys.verify(refresh_token, TokenKind::Refresh)?;
    let (user_id, sid) = (claims.user_id()?, claims.sid.clone());
    let st = state.clone();
    let rotated = state.db.run(move |conn| sessions::rotate(conn, &st.keys, &claims, st.config.refresh_reuse_grace)).await;
    if rotated.is_err() {
        // A reused refresh token revoked its family: its tokens and sockets go now.
        sessions_ended(state, user_id, Some(sid), None);
    }
    rotated
}

/// Revokes the session of `refresh_token`, which must belong to the caller.
pub async fn logout(state: &State, caller: &AuthUser, refresh_token: &str) -> ApiResult<()> {
    let claims = state
        .keys
        .verify(refresh_token, TokenKind::Refresh)
        .map_err(|_| ApiError::invalid_field("refresh", "this refresh token is invalid or has expired"))?;
    if claims.user_id()? != caller.id {
        return Err(ApiError::forbidden(Reason::NotOwner, "this refresh token belongs to another user"));
    }
    let sid = claims.sid.clone();
    state.db.run(move |conn| db::sessions::revoke(conn, &sid, RevokeReason::Logout)).await?;
    sessions_ended(state, caller.id, Some(claims.sid), None);
    Ok(())
}

pub async fn profile(state: &State, user_id: UserId) -> ApiResult<User> {
    state.db.run(move |conn| db::users::get(conn, user_id)).await
}

/// Applies `changes` to the caller's profile; a taken username is a conflict.
pub async fn update_profile(state: &State, user_id: UserId, changes: ProfileChanges) -> ApiResult<User> {
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                if changes.is_empty() {
                    return db::users::get(conn, user_id);
                }
                if let Some(key) = &changes.username_key
                    && db::users::username_key_taken_by_other(conn, key, user_id)?
                {
                    return Err(ApiError::Conflict("this username is taken".into()));
                }
                if !db::users::update_profile(conn, user_id, &changes)? {
                    return Err(ApiError::Conflict("this username is taken".into()));
                }
                db::users::get(conn, user_id)
            })
        })
        .await
}

/// Changes the password after checking the current one; every other session and every pending
/// reset link is revoked.
pub async fn change_password(state: &State, caller: &AuthUser, current: String, new: Password) -> ApiResult<()> {
    let user = profile(state, caller.id).await?;
    if !verify_off_executor(current, user.password_hash.clone()).await? {
        return Err(ApiError::invalid_field("current_password", "the current password is not correct"));
    }
    new.check_not_identity(&user.username, &user.email).map_err(|message| ApiError::invalid_field("password", message))?;
    if verify_off_executor(new.expose().to_owned(), user.password_hash).await? {
        return Err(ApiError::invalid_field("password", "the new password must differ from the current one"));
    }
    let new_hash = hash_off_executor(state, new).await?;
    let (user_id, keep) = (caller.id, caller.session_id.clone());
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                db::users::set_password_hash(conn, user_id, &new_hash)?;
                // A reset link sent before would undo the change: it dies with the old password.
                db::one_time_tokens::use_up_all(conn, user_id, Purpose::ResetPassword)?;
                db::sessions::revoke_all(conn, user_id, Some(&keep), RevokeReason::PasswordChange)
            })
        })
        .await?;
    sessions_ended(state, caller.id, None, Some(caller.session_id.clone()));
    tracing::info!(user_id = %user_id, "password changed");
    audit::record(
        state,
        Event { action: "password_changed", actor: Some(user_id), subject: Some(user_id), address: None, detail: String::new() },
    )
    .await;
    Ok(())
}

/// Mails a reset link when an active account has this email; answers the same either way, and
/// at once: the work a known address makes (a token written, a mail queued, an audit line)
/// happens after the answer, so its time cannot tell who has an account.
pub fn send_reset_email(state: &State, email: EmailAddress, address: &str) {
    let (state, address) = (state.clone(), address.to_owned());
    tokio::spawn(async move {
        if let Err(error) = reset_email_work(&state, email, &address).await {
            tracing::warn!(error = format!("{error:?}"), "a password reset request failed after it was answered");
        }
    });
}

async fn reset_email_work(state: &State, email: EmailAddress, address: &str) -> ApiResult<()> {
    let st = state.clone();
    let issued = state
        .db
        .run(move |conn| match db::users::active_by_email(conn, email.as_str())? {
            Some(user) => {
                let raw = issue_one_time_token(conn, user.id, Purpose::ResetPassword, st.config.reset_token_ttl)?;
                Ok(Some((user, raw)))
            }
            None => Ok(None),
        })
        .await?;
    if let Some((user, raw)) = issued {
        // Answered the same either way: a limited account simply gets no further mail.
        if state.limits.check(crate::ratelimit::RESET_MAIL_PER_ACCOUNT, &user.id.to_string()).await.is_err() {
            tracing::warn!(user_id = %user.id, "reset mail limit reached; no mail sent");
            return Ok(());
        }
        let link = state.mailer.link(&format!("/reset-password/{}/{}", user.id, raw));
        let minutes = state.config.reset_token_ttl.as_secs().div_ceil(60);
        state.mailer.send(mail::reset_mail(&user.email, &user.username, &link, minutes));
        tracing::info!(user_id = %user.id, "password reset mail queued");
        audit::record(
            state,
            Event {
                action: "password_reset_requested",
                actor: None,
                subject: Some(user.id),
                address: Some(address),
                detail: String::new(),
            },
        )
        .await;
    }
    Ok(())
}

/// Sets a new password from a reset link. The token is single-use; every session is revoked,
/// and the email counts as verified (the link proved the user reads it).
pub async fn reset_password(state: &State, user_id: UserId, raw_token: String, password: Password, address: &str) -> ApiResult<()> {
    let check_token = raw_token.clone();
    let token = state.db.run(move |conn| find_one_time_token(conn, user_id, Purpose::ResetPassword, &check_token)).await?;
    let token_id = match token {
        Some((id, false, false)) => id,
        _ => return Err(invalid_link("token")),
    };
    let user = profile(state, user_id).await?;
    password.check_not_identity(&user.username, &user.email).map_err(|message| ApiError::invalid_field("password", message))?;
    let new_hash = hash_off_executor(state, password).await?;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                if !db::one_time_tokens::consume(conn, token_id)? {
                    return Err(invalid_link("token"));
                }
                db::users::set_password_hash_and_verify_email(conn, user_id, &new_hash)?;
                // Any other reset link sent earlier dies with this one.
                db::one_time_tokens::use_up_all(conn, user_id, Purpose::ResetPassword)?;
                db::sessions::revoke_all(conn, user_id, None, RevokeReason::PasswordReset)
            })
        })
        .await?;
    sessions_ended(state, user_id, None, None);
    tracing::info!(user_id = %user_id, "password reset");
    audit::record(
        state,
        Event { action: "password_reset", actor: Some(user_id), subject: Some(user_id), address: Some(address), detail: String::new() },
    )
    .await;
    Ok(())
}

/// Confirms the email address from a verification link. Opening a valid link again after the
/// address is verified succeeds.
pub async fn verify_email(state: &State, user_id: UserId, raw_token: String) -> ApiResult<()> {
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let Some((token_id, used, expired)) = find_one_time_token(conn, user_id, Purpose::VerifyEmail, &raw_token)? else {
                    return Err(invalid_link("token"));
                };
                if db::users::get(conn, user_id)?.email_verified {
                    return Ok(());
                }
                if used || expired || !db::one_time_tokens::consume(conn, token_id)? {
                    return Err(invalid_link("token"));
                }
                db::users::set_email_verified(conn, user_id)?;
                Ok(())
            })
        })
        .await
}

/// Mails a fresh verification link to the caller, unless the address is already verified.
pub async fn resend_verification(state: &State, user_id: UserId) -> ApiResult<()> {
    let st = state.clone();
    let issued = state
        .db
        .run(move |conn| {
            let user = db::users::get(conn, user_id)?;
            if user.email_verified {
                return Ok(None);
            }
            let raw = issue_one_time_token(conn, user_id, Purpose::VerifyEmail, st.config.verify_token_ttl)?;
            Ok(Some((user, raw)))
        })
        .await?;
    if let Some((user, raw)) = issued {
        send_verification(state, &user, &raw);
    }
    Ok(())
}

/// Creates an administrator (the `createsuperuser` command). Synchronous: no server runs.
pub fn create_superuser(conn: &mut DbConn, username: &Username, email: &EmailAddress, password: &Password, cost: u32) -> ApiResult<UserId> {
    let password_hash = hash_password(password.expose(), cost)?;
    write_tx(conn, |conn| {
        let new_user = NewUser {
            username: username.as_str(),
            username_key: &username.key(),
            first_name: "",
            last_name: "",
            first_name_key: "",
            last_name_key: "",
            email: email.as_str(),
            password_hash: &password_hash,
            email_verified: true,
            is_admin: true,
            date_joined: db::now(),
        };
        db::users::insert(conn, &new_user)?.ok_or_else(|| ApiError::Conflict("a user with this username or email already exists".into()))
    })
}
