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
    modifiers(&BearerAuth, &CommonResponses),
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

/// Documents the answers every operation can give: `400` where it takes a body or parameters,
/// `401` where it needs a token, `413` where it takes a body (the contract's error shape).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        use utoipa::openapi::{Ref, RefOr, ResponseBuilder, content::ContentBuilder};
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete, &mut item.put];
            for operation in operations.into_iter().flatten() {
                let takes_input = operation.request_body.is_some() || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let needs_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut operation.responses.responses;
                if takes_input {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("Invalid input: malformed JSON, a field, or a path or query parameter (`validation_error`)")
                    });
                }
                if needs_token {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| error("Missing, invalid, expired or revoked token (`not_authenticated`)"));
                }
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| error("Body over the size limit (`payload_too_large`)"));
                }
            }
        }
    }
}

/// The document's title, description, tags and security scheme; paths are added by routing.
pub fn base() -> OpenApiDoc {
    BaseDoc::openapi()
}

/// The full document, built by registering the routes on a throw-away app.
pub fn document() -> OpenApiDoc {
    let (_, mut api) = App::new().into_utoipa_app().openapi(base()).configure(crate::routes::configure).split_for_parts();
    complete(&mut api);
    api
}

/// Adds what applies to every operation; the routes' paths arrive after the base document's
/// modifiers ran, so this runs on the assembled document (served and committed alike).
pub fn complete(api: &mut OpenApiDoc) {
    CommonResponses.modify(api);
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
