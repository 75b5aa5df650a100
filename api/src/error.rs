//! The one error type of the API and the one place that renders it as the contract's error shape.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Per-field validation messages, keyed by the request field name.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Every failure a handler can report. Each variant has one status and one `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { message: String, fields: FieldErrors },
    #[error("{0}")]
    NotAuthenticated(String),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    InsufficientTokens(String),
    /// Authenticated, but not allowed; `reason` says why, for machines.
    #[error("{message}")]
    Forbidden { reason: Reason, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many requests, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    AiUnavailable(String),
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The path exists, the method does not; `allow` lists the methods it takes.
    #[error("this path takes {allow} only")]
    MethodNotAllowed { allow: String },
    /// Anything unexpected: logged with its cause, reported to the client without detail.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

/// The machine-readable error codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationError,
    NotAuthenticated,
    InvalidCredentials,
    InsufficientTokens,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    AiUnavailable,
    MethodNotAllowed,
    ServiceUnavailable,
    InternalError,
}

/// Why an authenticated caller may not do something: the `reason` beside `code: forbidden`,
/// so a client can tell "blocked" from "not a member" without reading prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a member of the room.
    NotMember,
    /// A block stands between the two users.
    Blocked,
    /// The act needs friendship.
    NotFriends,
    /// Administrators only.
    NotAdmin,
    /// Only the receiver of a friend request answers it.
    NotReceiver,
    /// Only the sender of a friend request cancels it.
    NotSender,
    /// The token or resource belongs to another user.
    NotOwner,
    /// The account was deactivated.
    AccountInactive,
    /// A browser origin that `CORS_ORIGINS` does not allow.
    OriginNotAllowed,
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For `forbidden`: why, for machines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub message: String,
    /// Present for `validation_error` only: messages per request field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
}

impl ApiError {
    /// A validation error about the request as a whole.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::Validation { message: message.into(), fields: FieldErrors::new() }
    }

    /// A validation error about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![message.clone()]);
        ApiError::Validation { message: format!("{field}: {message}"), fields }
    }

    /// A validation error listing several fields; `None` when the list is empty.
    pub fn from_fields(fields: FieldErrors) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        let message = fields.iter().map(|(field, messages)| format!("{field}: {}", messages.join(" "))).collect::<Vec<_>>().join("; ");
        Some(ApiError::Validation { message, fields })
    }

    /// A refusal, with its machine-readable reason.
    pub fn forbidden(reason: Reason, message: impl Into<String>) -> Self {
        ApiError::Forbidden { reason, message: message.into() }
    }

    pub fn not_authenticated(message: impl Into<String>) -> Self {
        ApiError::NotAuthenticated(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(cause.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation { .. } => ErrorCode::ValidationError,
            ApiError::NotAuthenticated(_) => ErrorCode::NotAuthenticated,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::InsufficientTokens(_) => ErrorCode::InsufficientTokens,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::AiUnavailable(_) => ErrorCode::AiUnavailable,
            ApiError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// The error as the contract's JSON body.
    pub fn body(&self) -> ErrorBody {
        let fields = match self {
            ApiError::Validation { fields, .. } => Some(fields.clone()),
            _ => None,
        };
        let reason = match self {
            ApiError::Forbidden { reason, .. } => Some(*reason),
            _ => None,
        };
        ErrorBody { error: ErrorDetail { code: self.code(), reason, message: self.to_string(), fields } }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation { .. } => 400,
            ApiError::NotAuthenticated(_) | ApiError::InvalidCredentials => 401,
            ApiError::InsufficientTokens(_) => 402,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::AiUnavailable(_) | ApiError::Unavailable(_) => 503,
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    /// A database that is busy, full, restarting or unreachable is a temporary condition (503,
    /// worth a retry); anything else is a bug (500).
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        let temporary = match &e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => true,
            Error::DatabaseError(_, info) => {
                let message = info.message();
                // SQLite busy or out of space; PostgreSQL restarting, gone, or out of space.
                [
                    "database is locked",
                    "database is busy",
                    "database table is locked",
                    "database or disk is full",
                    "No space left on device",
                    "terminating connection",
                    "server closed the connection",
                    "the database system is",
                    "connection to server",
                    "no connection to the server",
                ]
                .iter()
                .any(|sign| message.contains(sign))
            }
            _ => false,
        };
        if temporary { ApiError::Unavailable(e.into()) } else { ApiError::internal(e) }
    }
}

impl From<r2d2::Error> for ApiError {
    /// The pool had no connection in time: the database is down or saturated.
    fn from(e: r2d2::Error) -> Self {
        ApiError::Unavailable(e.into())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    /// A blocking task that panicked or was cancelled.
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

/// Collects per-field messages while parsing a request, so every bad field is reported at once.
#[derive(Debug, Default)]
pub struct Validator {
    fields: FieldErrors,
}

impl Validator {
    /// Keeps the value of `result`, or records its message under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.fail(field, message)).ok()
    }

    /// Records a message under `field`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.fields.entry(field.to_owned()).or_default().push(message.into());
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> ApiResult<()> {
        ApiError::from_fields(self.fields).map_or(Ok(()), Err)
    }
}

/// Shorthand for handler and service results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_renders_fields_and_other_errors_omit_them() {
        let body = serde_json::to_value(ApiError::invalid_field("password2", "passwords do not match").body()).unwrap();
        assert_eq!(body["error"]["code"], "validation_error");
        assert_eq!(body["error"]["fields"]["password2"][0], "passwords do not match");

        let body = serde_json::to_value(ApiError::NotFound("no such user".into()).body()).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        assert!(body["error"].get("fields").is_none());
        assert!(body["error"].get("reason").is_none());
    }

    #[test]
    fn a_refusal_carries_its_reason_beside_the_code() {
        let body = serde_json::to_value(ApiError::forbidden(Reason::Blocked, "you cannot message this user").body()).unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(body["error"]["reason"], "blocked");
    }

    #[test]
    fn internal_error_never_shows_its_cause() {
        let error = ApiError::internal(anyhow::anyhow!("secret table xyz is corrupt"));
        assert_eq!(error.status(), 500);
        assert_eq!(error.body().error.message, "internal server error");
    }
}
