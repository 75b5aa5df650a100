//! The one error type of the API and the one place that renders it as the contract's error shape.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
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
    #[error("{0}")]
    Forbidden(String),
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

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
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
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
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
        ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string(), fields } }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotAuthenticated(_) | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientTokens(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::AiUnavailable(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(error = format!("{cause:#}"), "service unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        if let ApiError::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        response.json(self.body())
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

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
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
    }

    #[test]
    fn internal_error_never_shows_its_cause() {
        let error = ApiError::internal(anyhow::anyhow!("secret table xyz is corrupt"));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.body().error.message, "internal server error");
    }
}
