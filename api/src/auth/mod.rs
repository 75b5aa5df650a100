//! Authentication: JWTs, password hashing, login sessions, and the check that turns an access
//! token into an [`AuthUser`] (with a per-thread cache that any revocation invalidates).

pub mod jwt;
pub mod password;
pub mod sessions;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;
use jwt::{JwtKeys, TokenKind};

/// The caller, authenticated by a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub session_id: String,
    pub is_admin: bool,
}

/// When a cached token check may be trusted: only while no revocation (logout, password change
/// or reset, refresh reuse, deactivation) happened since, and while this node can hear of
/// revocations made on other nodes. One per app, shared by its HTTP workers and the cluster link.
#[derive(Debug, Default)]
pub struct SessionTrust {
    revocations: AtomicU64,
    /// Set while this node cannot hear of revocations made elsewhere (its Redis subscription is
    /// down): every request then checks its session in the database.
    cut_off: AtomicBool,
}

impl SessionTrust {
    /// Call after a revocation has committed: every cached token check is stale from now on.
    pub fn revoked(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
    }

    /// Turns the token-check cache on or off (cluster mode turns it off while cut off).
    pub fn set_trusted(&self, trusted: bool) {
        self.cut_off.store(!trusted, Ordering::SeqCst);
    }

    /// Tells cache entries of different apps in one process apart.
    fn id(&self) -> usize {
        self as *const SessionTrust as usize
    }
}

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
    /// The [`SessionTrust`] it was checked under.
    trust: usize,
    at: Instant,
}

thread_local! {
    /// Token checks of this worker thread (actix workers are single-threaded), keyed by the
    /// exact token: a request bearing a token checked moments ago skips the signature and the
    /// database round trip. Equal strings carry the same signature, so nothing is trusted that
    /// was not verified.
    static CHECKED: RefCell<HashMap<String, CheckedToken>> = RefCell::new(HashMap::new());
}

fn cached_check(trust: &SessionTrust, token: &str) -> Option<AuthUser> {
    if trust.cut_off.load(Ordering::SeqCst) {
        return None;
    }
    let revocations = trust.revocations.load(Ordering::SeqCst);
    CHECKED.with(|cache| {
        let cache = cache.borrow();
        let entry = cache.get(token)?;
        let fresh = entry.trust == trust.id()
            && entry.revocations == revocations
            && entry.at.elapsed() < TOKEN_CHECK_TTL
            && chrono::Utc::now().timestamp() < entry.expires_at;
        fresh.then(|| entry.user.clone())
    })
}

fn remember_check(trust: &SessionTrust, token: &str, user: &AuthUser, expires_at: i64, revocations: u64) {
    CHECKED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(token.to_owned(), CheckedToken { user: user.clone(), expires_at, revocations, trust: trust.id(), at: Instant::now() });
    });
}

/// Checks an access token: signature, expiry, kind, and that its session and user are live.
pub async fn authenticate(keys: &JwtKeys, db: &Db, trust: &SessionTrust, token: &str) -> ApiResult<AuthUser> {
    if let Some(user) = cached_check(trust, token) {
        return Ok(user);
    }
    let claims = keys.verify(token, TokenKind::Access)?;
    let id = claims.user_id()?;
    // Read the count before the database: a revocation committed after this read bumps it and
    // so invalidates what is cached below.
    let revocations = trust.revocations.load(Ordering::SeqCst);
    let sid = claims.sid.clone();
    let is_admin = db
        .run(move |conn| crate::db::sessions::active_user_is_admin(conn, &sid, id))
        .await?
        .ok_or_else(|| ApiError::not_authenticated("session has been revoked"))?;
    let user = AuthUser { id, session_id: claims.sid, is_admin };
    remember_check(trust, token, &user, claims.exp, revocations);
    Ok(user)
}
