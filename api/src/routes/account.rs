//! `/api/account/…`: registration, login, tokens, profile and the password and email flows.

use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::auth::sessions::TokenPair;
use crate::domain::{self, EmailAddress, Password, Username};
use crate::dto::{Empty, UserProfile};
use crate::error::{ApiResult, ErrorBody, Validator};
use crate::extract::{ClientAddress, JsonBody};
use crate::ids::UserId;
use crate::ratelimit;
use crate::services::accounts::{self, ProfileChanges, Registration};
use crate::state::AppState;

type State = web::Data<AppState>;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3-30 letters, digits, `_ . -`; unique ignoring case.
    #[schema(min_length = 3, max_length = 30, pattern = r"^[A-Za-z0-9_.-]+$")]
    pub username: String,
    #[schema(max_length = 150)]
    pub first_name: String,
    #[schema(max_length = 150)]
    pub last_name: String,
    /// Unique ignoring case.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8-128 characters, not entirely numeric, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Must equal `password`.
    pub password2: String,
    /// Acceptance of the terms and conditions; must be `true`.
    pub tc: bool,
}

impl RegisterRequest {
    fn parse(self) -> ApiResult<Registration> {
        let mut v = Validator::default();
        let username = v.check("username", Username::parse(&self.username));
        let first_name = v.check("first_name", domain::parse_text(&self.first_name, domain::NAME_MAX_CHARS, false));
        let last_name = v.check("last_name", domain::parse_text(&self.last_name, domain::NAME_MAX_CHARS, false));
        let email = v.check("email", EmailAddress::parse(&self.email));
        let password = v.check("password", Password::parse(&self.password));
        if password.is_some() && self.password != self.password2 {
            v.fail("password2", "passwords do not match");
        }
        if let (Some(password), Some(username), Some(email)) = (&password, &username, &email)
            && let Err(message) = password.check_not_identity(username.as_str(), email.as_str())
        {
            v.fail("password", message);
        }
        if !self.tc {
            v.fail("tc", "you must accept the terms and conditions");
        }
        let (Some(username), Some(first_name), Some(last_name), Some(email), Some(password)) =
            (username, first_name, last_name, email, password)
        else {
            return Err(v.finish().err().unwrap_or_else(|| crate::error::ApiError::invalid("invalid registration")));
        };
        v.finish()?;
        Ok(Registration { username, first_name, last_name, email, password })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The caller's profile and a fresh token pair.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserProfile,
    pub access: String,
    pub refresh: String,
}

impl AuthResponse {
    fn new(user: crate::db::models::User, tokens: TokenPair) -> Self {
        AuthResponse { user: user.into(), access: tokens.access, refresh: tokens.refresh }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh: String,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Up to 500 characters.
    pub bio: Option<String>,
}

impl UpdateProfileRequest {
    fn parse(self) -> ApiResult<ProfileChanges> {
        let mut v = Validator::default();
        let username = self.username.and_then(|raw| v.check("username", Username::parse(&raw)));
        let changes = ProfileChanges::new(
            username,
            self.first_name.and_then(|raw| v.check("first_name", domain::parse_text(&raw, domain::NAME_MAX_CHARS, false))),
            self.last_name.and_then(|raw| v.check("last_name", domain::parse_text(&raw, domain::NAME_MAX_CHARS, false))),
            self.bio.and_then(|raw| v.check("bio", domain::parse_text(&raw, domain::BIO_MAX_CHARS, true))),
        );
        v.finish()?;
        Ok(changes)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub password: String,
    pub password2: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetEmailRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPasswordRequest {
    pub password: String,
    pub password2: String,
}

/// Parses a new password and its confirmation.
fn parse_new_password(password: &str, password2: &str) -> ApiResult<Password> {
    let mut v = Validator::default();
    let parsed = v.check("password", Password::parse(password));
    if parsed.is_some() && password != password2 {
        v.fail("password2", "passwords do not match");
    }
    v.finish()?;
    parsed.ok_or_else(|| crate::error::ApiError::invalid_field("password", "invalid password"))
}

/// Create an account.
///
/// Starts a session and mails a link that confirms the email address.
#[utoipa::path(
    tag = "account",
    request_body = RegisterRequest,
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 201, description = "Account created", body = AuthResponse),
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 409, description = "Email or username already taken", body = ErrorBody),
    )
)]
#[post("/api/account/register/")]
pub async fn register(state: State, address: ClientAddress, body: JsonBody<RegisterRequest>) -> ApiResult<HttpResponse> {
    state.limits.check(ratelimit::REGISTER_PER_ADDRESS, &address.0).await?;
    let (user, tokens) = accounts::register(&state, body.0.parse()?).await?;
    Ok(HttpResponse::Created().json(AuthResponse::new(user, tokens)))
}

/// Log in with email and password.
#[utoipa::path(
    tag = "account",
    request_body = LoginRequest,
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody),
        (status = 403, description = "The account is deactivated", body = ErrorBody),
    )
)]
#[post("/api/account/login/")]
pub async fn login(state: State, address: ClientAddress, body: JsonBody<LoginRequest>) -> ApiResult<web::Json<AuthResponse>> {
    state.limits.check(ratelimit::LOGIN_PER_ADDRESS, &address.0).await?;
    let LoginRequest { email, password } = body.0;
    let (user, tokens) = accounts::login(&state, &email, password, &address.0).await?;
    Ok(web::Json(AuthResponse::new(user, tokens)))
}

/// Exchange a refresh token for a new pair.
///
/// Refresh tokens are single-use: the old one is revoked, and presenting it again revokes
/// every token of its session.
#[utoipa::path(
    tag = "account",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "Invalid, expired, reused or revoked refresh token", body = ErrorBody),
    )
)]
#[post("/api/account/token/refresh/")]
pub async fn refresh_token(state: State, body: JsonBody<RefreshRequest>) -> ApiResult<web::Json<TokenPair>> {
    Ok(web::Json(accounts::refresh(&state, &body.0.refresh).await?))
}

/// Log out: revoke the session of the given refresh token.
#[utoipa::path(
    tag = "account",
    request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session is revoked", body = Empty),
        (status = 400, description = "The refresh token is invalid", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
#[post("/api/account/logout/")]
pub async fn logout(state: State, caller: AuthUser, body: JsonBody<RefreshRequest>) -> ApiResult<web::Json<Empty>> {
    accounts::logout(&state, &caller, &body.0.refresh).await?;
    Ok(web::Json(Empty {}))
}

/// The caller's profile.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = UserProfile),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
#[get("/api/account/profile/")]
pub async fn get_profile(state: State, caller: AuthUser) -> ApiResult<web::Json<UserProfile>> {
    Ok(web::Json(accounts::profile(&state, caller.id).await?.into()))
}

/// Change username, names or bio.
#[utoipa::path(
    tag = "account",
    request_body = UpdateProfileRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated profile", body = UserProfile),
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 409, description = "Username already taken", body = ErrorBody),
    )
)]
#[patch("/api/account/profile/")]
pub async fn update_profile(state: State, caller: AuthUser, body: JsonBody<UpdateProfileRequest>) -> ApiResult<web::Json<UserProfile>> {
    let changes = body.0.parse()?;
    Ok(web::Json(accounts::update_profile(&state, caller.id, changes).await?.into()))
}

/// Change the password; every other session is logged out.
#[utoipa::path(
    tag = "account",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "Password changed", body = Empty),
        (status = 400, description = "Wrong current password or a rule broken", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
#[post("/api/account/change_password/")]
pub async fn change_password(state: State, caller: AuthUser, body: JsonBody<ChangePasswordRequest>) -> ApiResult<web::Json<Empty>> {
    state.limits.check(ratelimit::ACCOUNT_CHANGES_PER_USER, &caller.id.to_string()).await?;
    let ChangePasswordRequest { current_password, password, password2 } = body.0;
    let new = parse_new_password(&password, &password2)?;
    accounts::change_password(&state, &caller, current_password, new).await?;
    Ok(web::Json(Empty {}))
}

/// Mail a password-reset link.
///
/// Answers the same whether or not an account has this email.
#[utoipa::path(
    tag = "account",
    request_body = ResetEmailRequest,
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "If the account exists, a link is on its way", body = Empty),
        (status = 400, description = "Not an email address", body = ErrorBody),
    )
)]
#[post("/api/account/send-reset-password-email/")]
pub async fn send_reset_password_email(
    state: State,
    address: ClientAddress,
    body: JsonBody<ResetEmailRequest>,
) -> ApiResult<web::Json<Empty>> {
    state.limits.check(ratelimit::RESET_MAIL_PER_ADDRESS, &address.0).await?;
    let email = EmailAddress::parse(&body.0.email).map_err(|m| crate::error::ApiError::invalid_field("email", m))?;
    accounts::send_reset_email(&state, email, &address.0);
    Ok(web::Json(Empty {}))
}

/// Set a new password from a reset link.
///
/// The link works once and expires; every session of the account is logged out.
#[utoipa::path(
    tag = "account",
    request_body = NewPasswordRequest,
    params(
        ("uid" = i64, Path, description = "User id from the link"),
        ("token" = String, Path, description = "Token from the link"),
    ),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "Password changed", body = Empty),
        (status = 400, description = "Invalid or expired link, or a rule broken", body = ErrorBody),
    )
)]
#[post("/api/account/reset-password/{uid}/{token}/")]
pub async fn reset_password(
    state: State,
    address: ClientAddress,
    path: web::Path<(i64, String)>,
    body: JsonBody<NewPasswordRequest>,
) -> ApiResult<web::Json<Empty>> {
    state.limits.check(ratelimit::EMAIL_LINKS_PER_ADDRESS, &address.0).await?;
    let (uid, token) = path.into_inner();
    let new = parse_new_password(&body.0.password, &body.0.password2)?;
    accounts::reset_password(&state, UserId(uid), token, new, &address.0).await?;
    Ok(web::Json(Empty {}))
}

/// Confirm the email address from the link in the verification mail.
#[utoipa::path(
    tag = "account",
    params(
        ("uid" = i64, Path, description = "User id from the link"),
        ("token" = String, Path, description = "Token from the link"),
    ),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "Email verified", body = Empty),
        (status = 400, description = "Invalid or expired link", body = ErrorBody),
    )
)]
#[post("/api/account/verify-email/{uid}/{token}/")]
pub async fn verify_email(state: State, address: ClientAddress, path: web::Path<(i64, String)>) -> ApiResult<web::Json<Empty>> {
    state.limits.check(ratelimit::EMAIL_LINKS_PER_ADDRESS, &address.0).await?;
    let (uid, token) = path.into_inner();
    accounts::verify_email(&state, UserId(uid), token).await?;
    Ok(web::Json(Empty {}))
}

/// Mail a new verification link to the caller (nothing is sent once verified).
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = ErrorBody),
        (status = 200, description = "A link is on its way unless the email is already verified", body = Empty),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
#[post("/api/account/resend-verification-email/")]
pub async fn resend_verification_email(state: State, caller: AuthUser) -> ApiResult<web::Json<Empty>> {
    state.limits.check(ratelimit::ACCOUNT_CHANGES_PER_USER, &caller.id.to_string()).await?;
    accounts::resend_verification(&state, caller.id).await?;
    Ok(web::Json(Empty {}))
}
