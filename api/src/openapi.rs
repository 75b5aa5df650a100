//! The OpenAPI document, generated from the handlers registered in `routes::configure`.

use actix_web::App;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chat API",
        description = "Real-time chat: accounts, contacts, rooms, messages over REST and WebSocket, \
                       and an AI assistant. Errors always have the shape \
                       `{\"error\": {\"code\", \"message\", \"fields\"?}}`.",
        license(name = "MIT"),
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::realtime::protocol::ClientFrame, crate::realtime::protocol::ServerFrame)),
    tags(
        (name = "account", description = "Registration, login, tokens, profile, passwords and email"),
        (name = "contacts", description = "Friend requests, friends, blocks and people search"),
        (name = "rooms", description = "Private and group rooms, history, sending and read receipts"),
        (name = "realtime", description = "WebSocket connections"),
        (name = "ai", description = "The AI assistant and token balances"),
        (name = "admin", description = "Administration (admins only)"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct BaseDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The document's title, description, tags and security scheme; paths are added by routing.
pub fn base() -> OpenApiDoc {
    BaseDoc::openapi()
}

/// The full document, built by registering the routes on a throw-away app.
pub fn document() -> OpenApiDoc {
    let (_, api) = App::new().into_utoipa_app().openapi(base()).configure(crate::routes::configure).split_for_parts();
    api
}

/// The document as YAML, as committed in `openapi.yaml`.
pub fn yaml() -> anyhow::Result<String> {
    Ok(document().to_yaml()?)
}

#[cfg(test)]
mod tests {
    /// `openapi.yaml` is committed for clients; it must be exactly what the code generates.
    #[test]
    fn committed_openapi_yaml_is_fresh() {
        let generated = super::yaml().unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi.yaml is stale: regenerate it with `cargo run -p chat-api -- openapi > openapi.yaml` \
             (or UPDATE_OPENAPI=1 cargo test -p chat-api openapi)"
        );
    }
}
