//! Authentication: JWTs, password hashing, login sessions, and the `AuthUser` extractor that
//! turns a bearer token into a user before a handler runs.

pub mod jwt;
pub mod password;
pub mod sessions;

use std::future::Future;
use std::pin::Pin;

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

/// Checks an access token: signature, expiry, kind, and that its session and user are live.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthUser> {
    let claims = state.keys.verify(token, TokenKind::Access)?;
    let id = claims.user_id()?;
    let sid = claims.sid.clone();
    let is_admin = state
        .db
        .run(move |conn| sessions::active_user_is_admin(conn, &sid, id))
        .await?
        .ok_or_else(|| ApiError::not_authenticated("session has been revoked"))?;
    Ok(AuthUser { id, session_id: claims.sid, is_admin })
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(req: &HttpRequest) -> ApiResult<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::not_authenticated("authentication credentials were not provided"))?
        .to_str()
        .map_err(|_| ApiError::not_authenticated("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
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
