//! Building and running the HTTP server: state, routes, middleware and the listening socket.

use std::net::SocketAddr;

use actix_web::dev::{ResourceDef, Server};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use std::sync::Arc;

use crate::auth::SessionTrust;
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::realtime::Realtime;
use crate::state::AppState;
use crate::{extract, openapi, routes, spa, telemetry};

/// The documented paths and their methods, for telling 405 from 404.
pub struct KnownRoutes(Vec<(ResourceDef, Vec<&'static str>)>);

impl KnownRoutes {
    fn from_document(api: &utoipa::openapi::OpenApi) -> KnownRoutes {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                (ResourceDef::new(path.as_str()), methods.into_iter().filter(|(_, has)| *has).map(|(m, _)| m).collect())
            })
            .collect();
        KnownRoutes(routes)
    }
}

/// Requests no route took: 405 with `Allow` when the path exists under other methods, else
/// 404, both in the contract's error shape.
async fn not_found(req: HttpRequest, known: web::Data<KnownRoutes>) -> Result<HttpResponse, ApiError> {
    // The most literal documented paths that match (`/friend-request/view/` over
    // `/friend-request/{id}/`).
    let matches: Vec<&(ResourceDef, Vec<&'static str>)> = known.0.iter().filter(|(def, _)| def.is_match(req.path())).collect();
    let parameters = |def: &ResourceDef| def.pattern().map_or(0, |pattern| pattern.matches('{').count());
    let fewest = matches.iter().map(|(def, _)| parameters(def)).min();
    let mut allow: Vec<&str> =
        matches.iter().filter(|(def, _)| Some(parameters(def)) == fewest).flat_map(|(_, methods)| methods.iter().copied()).collect();
    allow.sort_unstable();
    allow.dedup();
    // A documented method on a path that only looks documented (`/friend-request/abc/`, where an
    // id is a number) is no route; another method on a documented path is 405.
    if allow.is_empty() || allow.contains(&req.method().as_str()) {
        return Err(ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())));
    }
    Err(ApiError::MethodNotAllowed { allow: allow.join(", ") })
}

/// Browser access from other origins listed in `CORS_ORIGINS` (bearer tokens, no cookies, so
/// no credentials mode). Same-origin requests (browsers send `Origin` on them too) and
/// `PUBLIC_URL`'s origin always pass.
fn cors(config: &crate::config::Config) -> actix_cors::Cors {
    let config = config.clone();
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let host = head.headers().get(actix_web::http::header::HOST).and_then(|host| host.to_str().ok());
            config.origin_allowed_for(origin.to_str().unwrap_or(""), host, extract::request_scheme(head.headers()))
        })
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([actix_web::http::header::AUTHORIZATION, actix_web::http::header::CONTENT_TYPE])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600)
}

/// Binds the listener and builds the server; the returned address has the real port when
/// `CHAT_BIND` asked for port 0.
pub fn build(config: Config) -> anyhow::Result<(Server, SocketAddr, Realtime)> {
    let workers = config.workers;
    let listener = std::net::TcpListener::bind(&config.bind).map_err(|e| anyhow::anyhow!("binding {}: {e}", config.bind))?;
    let address = listener.local_addr()?;
    let db = Db::connect(&config.database_url)?;
    let metrics = Arc::new(Metrics::default());
    let trust = Arc::new(SessionTrust::default());
    let realtime = Realtime::start(&config, db.clone(), db.sibling(1)?, metrics.clone(), trust.clone())?;
    let state = web::Data::new(AppState::build(config, db, metrics, trust, Arc::new(realtime.clone()))?);
    let realtime_data = web::Data::new(realtime.clone());
    let server = HttpServer::new(move || {
        let (app, mut api) = App::new().into_utoipa_app().openapi(openapi::base()).configure(routes::configure).split_for_parts();
        openapi::complete(&mut api);
        let known = web::Data::new(KnownRoutes::from_document(&api));
        let static_dir = state.config.static_dir.clone();
        app.app_data(state.clone())
            .app_data(realtime_data.clone())
            .app_data(known)
            .app_data(web::PathConfig::default().error_handler(extract::path_error))
            .app_data(web::QueryConfig::default().error_handler(extract::query_error))
            .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", api))
            .configure(|cfg| {
                if let Some(dir) = static_dir {
                    cfg.service(spa::service(dir));
                }
            })
            .default_service(web::to(not_found))
            .wrap(from_fn(telemetry::log_request))
            .wrap(cors(&state.config))
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .wrap(from_fn(browser_rules))
            .wrap(from_fn(telemetry::add_trailing_slash))
    })
    .workers(workers)
    // Chat frames are small and latency-bound: Nagle would hold one back until the client's
    // delayed ACK (up to 40 ms) whenever an earlier one is unacknowledged.
    .tcp_nodelay(true)
    // Database work is all the workers block on (password hashing has its own threads): a few
    // threads per worker keep the connection pool busy without waking threads that would only
    // queue for a connection (BENCHMARKS.md has the figures).
    .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
    // Shutdown is ordered by `run`: sockets first, then the writer, then HTTP.
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok((server, address, realtime))
}

/// What pages served here may load: the SPA only its own files and this origin's API and
/// WebSocket; the API docs (Swagger UI) also inline styles and `data:` images.
const APP_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A Content-Security-Policy on every answer, and `Cache-Control: no-store` on API answers
/// that set no caching of their own (tokens, private data: no cache on the way may keep them).
async fn browser_rules(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue};
    let docs = req.path().starts_with("/api/docs") || req.path() == "/api/openapi.json";
    let api = telemetry::is_api_path(req.path()) && !docs;
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(if docs { DOCS_POLICY } else { APP_POLICY }));
    if api && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// Waits for SIGTERM or SIGINT.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Blocking threads per HTTP worker (database calls through `Db::run`).
const BLOCKING_THREADS_PER_WORKER: usize = 3;

/// Runs the server until SIGTERM or SIGINT, then shuts down in order: every WebSocket is
/// closed with 1012 (reconnect), messages already accepted are stored and answered, and HTTP
/// requests in flight finish.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let (server, address, realtime) = build(config)?;
    tracing::info!(%address, "chat-api listening");
    // A fixed line on stdout lets scripts and tests learn the port.
    println!("chat-api listening on http://{address}");
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        termination().await;
        tracing::info!("shutting down: closing connections and storing queued messages");
        realtime.shut_down().await;
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped");
    Ok(())
}
