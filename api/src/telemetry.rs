//! Logging: `tracing` to stderr (text or JSON), one line per request, and the URL rule that
//! lets every API path be called with or without its trailing slash.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `RUST_LOG` filters (default `info`).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// Logs method, route, status and duration. The route is the matched pattern
/// (`/api/account/reset-password/{uid}/{token}/`), never the raw path or the query string, so
/// tokens in links and in `?token=` stay out of the logs.
pub async fn log_request(req: ServiceRequest, next: Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let metrics = req.app_data::<actix_web::web::Data<crate::state::AppState>>().map(|state| state.metrics.clone());
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    if let Some(metrics) = metrics {
        metrics.observe_http(status, started.elapsed());
    }
    // Building the line costs allocations: skip it when it would be filtered out.
    if status < 500 && !tracing::enabled!(tracing::Level::INFO) {
        return Ok(response);
    }
    let route = response.request().match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, route, status, elapsed_ms, "request");
    } else {
        tracing::info!(%method, route, status, elapsed_ms, "request");
    }
    Ok(response)
}

/// Whether `path` belongs to the API (REST or WebSocket) rather than the SPA.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/ws" || path.starts_with("/ws/")
}

/// Whether `path` is an API path missing its trailing slash (files such as
/// `/api/openapi.json` excepted).
fn needs_trailing_slash(path: &str) -> bool {
    let api = is_api_path(path);
    let is_file = path.rsplit('/').next().is_some_and(|segment| segment.contains('.'));
    api && !path.ends_with('/') && !is_file
}

/// Adds the trailing slash to API paths before routing, so `/api/account/login` reaches
/// `/api/account/login/`.
pub async fn add_trailing_slash(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if needs_trailing_slash(req.path()) {
        let path_and_query = match req.uri().query() {
            Some(query) => format!("{}/?{query}", req.path()),
            None => format!("{}/", req.path()),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::needs_trailing_slash;

    #[test]
    fn only_api_paths_without_a_file_name_get_a_slash() {
        assert!(needs_trailing_slash("/api/account/login"));
        assert!(needs_trailing_slash("/ws"));
        assert!(!needs_trailing_slash("/api/account/login/"));
        assert!(!needs_trailing_slash("/api/openapi.json"));
        assert!(!needs_trailing_slash("/healthz"));
        assert!(!needs_trailing_slash("/chat/7"));
    }
}
