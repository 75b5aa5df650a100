//! Authentication: JWTs, password hashing, login sessions, and the `AuthUser` extractor that
//! turns a bearer token into a user before a handler runs.

pub mod jwt;
pub mod password;
pub mod sessions;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use jwt::TokenKind;

/// The caller, authenticated by a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub session_id: String,
    pub is_admin: bool,
}

/// Counts revocations (logout, password change or reset, refresh reuse, deactivation) in this
/// process. A cached token check is trusted only while the count is unchanged.
static REVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// How long a token check may be reused when nothing was revoked meanwhile.
const TOKEN_CHECK_TTL: Duration = Duration::from_secs(10);
/// Cached token checks per worker, at most.
const TOKEN_CACHE_MAX: usize = 10_000;

/// An access token that passed every check: signature, kind, issuer, and a live session.
struct CheckedToken {
    user: AuthUser,
    /// The token's own expiry (Unix seconds), still enforced on every reuse.
    expires_at: i64,
    revocations: u64,
    at: Instant,
}

thread_local! {
    /// Token checks of this worker thread (actix workers are single-threaded), keyed by the
    /// exact token: a request bearing a token checked moments ago skips the signature and the
    /// database round trip. Equal strings carry the same signature, so nothing is trusted that
    /// was not verified.
    static CHECKED: RefCell<HashMap<String, CheckedToken>> = RefCell::new(HashMap::new());
}

/// False while this node cannot hear of revocations made on other nodes (its Redis
/// subscription is down): every request then checks its session in the database.
static TRUST_CACHED_SESSIONS: AtomicBool = AtomicBool::new(true);

/// Call after a revocation has committed: every cached token check is stale from now on.
pub fn sessions_revoked() {
    REVOCATIONS.fetch_add(1, Ordering::SeqCst);
}

/// Turns the token-check cache on or off (cluster mode turns it off while cut off from Redis).
pub fn trust_cached_sessions(trust: bool) {
    TRUST_CACHED_SESSIONS.store(trust, Ordering::SeqCst);
}

fn cached_check(token: &str) -> Option<AuthUser> {
    if !TRUST_CACHED_SESSIONS.load(Ordering::SeqCst) {
        return None;
    }
    let revocations = REVOCATIONS.load(Ordering::SeqCst);
    CHECKED.with(|cache| {
        let cache = cache.borrow();
        let entry = cache.get(token)?;
        let fresh =
            entry.revocations == revocations && entry.at.elapsed() < TOKEN_CHECK_TTL && chrono::Utc::now().timestamp() < entry.expires_at;
        fresh.then(|| entry.user.clone())
    })
}

fn remember_check(token: &str, user: &AuthUser, expires_at: i64, revocations: u64) {
    CHECKED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(token.to_owned(), CheckedToken { user: user.clone(), expires_at, revocations, at: Instant::now() });
    });
}

/// Checks an access token: signature, expiry, kind, and that its session and user are live.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthUser> {
    if let Some(user) = cached_check(token) {
        return Ok(user);
    }
    let claims = state.keys.verify(token, TokenKind::Access)?;
    let id = claims.user_id()?;
    // Read the count before the database: a revocation committed after this read bumps it and
    // so invalidates what is cached below.
    let revocations = REVOCATIONS.load(Ordering::SeqCst);
    let sid = claims.sid.clone();
    let is_admin = state
        .db
        .run(move |conn| sessions::active_user_is_admin(conn, &sid, id))
        .await?
        .ok_or_else(|| ApiError::not_authenticated("session has been revoked"))?;
    let user = AuthUser { id, session_id: claims.sid, is_admin };
    remember_check(token, &user, claims.exp, revocations);
    Ok(user)
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(req: &HttpRequest) -> ApiResult<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::not_authenticated("authentication credentials were not provided"))?
        .to_str()
        .map_err(|_| ApiError::not_authenticated("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => Err(ApiError::not_authenticated("expected 'Authorization: Bearer <access token>'")),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<AuthUser>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            authenticate(&state, &token?).await
        })
    }
}

/// The caller, who must be an administrator (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<AdminUser>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if !user.is_admin {
                return Err(ApiError::Forbidden("administrators only".into()));
            }
            Ok(AdminUser(user))
        })
    }
}
