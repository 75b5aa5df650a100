//! Request extractors that report failures in the contract's error shape: the authenticated
//! caller (bearer token), a JSON body with per-field messages, the client's address, and the
//! error handlers for actix's own path and query extractors.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::auth::{AuthUser, authenticate};
use crate::error::{ApiError, ApiResult, Reason};
use crate::state::AppState;

/// A JSON request body of type `T`. Wrong content type, malformed JSON and wrong or missing
/// fields become `400 validation_error` naming the field; a body over the limit becomes `413`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<JsonBody<T>>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let limit = req.app_data::<web::Data<AppState>>().map_or(64 * 1024, |s| s.config.json_body_limit);
        let payload = actix_web::body::BodyStream::new(payload.take());
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::invalid("the body must be JSON with 'Content-Type: application/json'"));
            }
            let bytes = match actix_web::body::to_bytes_limited(payload, limit).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => return Err(ApiError::invalid("the request body could not be read")),
                Err(_) => return Err(ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))),
            };
            parse_json(&bytes).map(JsonBody)
        })
    }
}

/// Deserialises `bytes`, naming the offending field in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // serde_json appends " at line L column C": useful for syntax errors, noise for fields.
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(format!("malformed JSON: {message}"));
        }
        if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            let field = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
            return ApiError::invalid_field(&field, "this field is required");
        }
        if path == "." {
            return ApiError::invalid(format!("the body must be a JSON object of the documented shape: {message}"));
        }
        ApiError::invalid_field(&path, message)
    })
}

/// The client's address, for rate limits: the peer address, or the first `X-Forwarded-For`
/// hop when `TRUST_FORWARDED_FOR` says a proxy sets it.
pub struct ClientAddress(pub String);

impl FromRequest for ClientAddress {
    type Error = ApiError;
    type Future = std::future::Ready<ApiResult<ClientAddress>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trust = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.config.trust_forwarded_for);
        let forwarded = trust
            .then(|| req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned());
        let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into());
        std::future::ready(Ok(ClientAddress(forwarded.unwrap_or(peer))))
    }
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
            authenticate(&state.keys, &state.db, &state.trust, &token?).await
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
                return Err(ApiError::forbidden(Reason::NotAdmin, "administrators only"));
            }
            Ok(AdminUser(user))
        })
    }
}

/// Error handler for `web::Path` extraction.
pub fn path_error(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::invalid(format!("invalid path parameter: {error}")).into()
}

/// Error handler for `web::Query` extraction.
pub fn query_error(error: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::invalid(format!("invalid query string: {error}")).into()
}

/// The scheme the client used: `https` when the proxy in front says so (`X-Forwarded-Proto`),
/// else `http` (chat-api itself speaks plain HTTP; TLS ends at the proxy).
pub fn request_scheme(headers: &actix_web::http::header::HeaderMap) -> &'static str {
    let forwarded = headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok());
    if forwarded.is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")) { "https" } else { "http" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        remember: bool,
    }

    fn fields(error: ApiError) -> crate::error::FieldErrors {
        match error {
            ApiError::Validation { fields, .. } => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let missing = parse_json::<Login>(br#"{"email":"a@b.c"}"#).unwrap_err();
        assert_eq!(fields(missing)["remember"], ["this field is required"]);
        let mistyped = parse_json::<Login>(br#"{"email":"a@b.c","remember":"yes"}"#).unwrap_err();
        assert!(fields(mistyped)["remember"][0].contains("expected a boolean"));
    }

    #[test]
    fn malformed_json_is_a_validation_error_without_fields() {
        let error = parse_json::<Login>(b"{\"email\":").unwrap_err();
        assert!(error.to_string().starts_with("malformed JSON"));
        assert!(fields(error).is_empty());
    }
}
