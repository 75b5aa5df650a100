//! Serving the built SPA (`STATIC_DIR`): its files at `/`, and `index.html` for client-side
//! routes such as `/chat/7`. Unknown API paths and missing asset files stay JSON 404s.

use std::path::PathBuf;

use actix_files::{Files, NamedFile};
use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{ResponseError, guard};

use crate::error::ApiError;

/// Whether `path` is one the SPA's `index.html` should answer.
fn is_client_route(path: &str) -> bool {
    let api = crate::telemetry::is_api_path(path);
    let file = path.rsplit('/').next().is_some_and(|segment| segment.contains('.'));
    !api && !file
}

/// The service for `dir`; mount it after every API route.
pub fn service(dir: PathBuf) -> Files {
    let index = dir.join("index.html");
    Files::new("/", &dir).index_file("index.html").guard(guard::Any(guard::Get()).or(guard::Head())).default_handler(fn_service(
        move |req: ServiceRequest| {
            let index = index.clone();
            async move {
                let (req, _) = req.into_parts();
                if !is_client_route(req.path()) {
                    let response = ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response();
                    return Ok(ServiceResponse::new(req, response));
                }
                let mut response = NamedFile::open_async(&index).await?.into_response(&req);
                // index.html names the hashed assets of the current build: always revalidate it.
                response.headers_mut().insert(
                    actix_web::http::header::CACHE_CONTROL,
                    CacheControl(vec![CacheDirective::NoCache]).to_string().parse().map_err(actix_web::error::ErrorInternalServerError)?,
                );
                Ok(ServiceResponse::new(req, response))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::is_client_route;

    #[test]
    fn client_routes_are_everything_but_api_paths_and_files() {
        assert!(is_client_route("/"));
        assert!(is_client_route("/chat/7"));
        assert!(is_client_route("/reset-password/3/abc"));
        assert!(!is_client_route("/api/contact/nothing/"));
        assert!(!is_client_route("/ws/"));
        assert!(!is_client_route("/assets/missing.js"));
    }
}
