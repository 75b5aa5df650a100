//! HTTP routes, one file per area. `configure` registers every documented handler; only
//! handlers registered here reach the OpenAPI document.

pub mod account;
pub mod ops;

use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(account::register)
        .service(account::login)
        .service(account::refresh_token)
        .service(account::logout)
        .service(account::get_profile)
        .service(account::update_profile)
        .service(account::change_password)
        .service(account::send_reset_password_email)
        .service(account::reset_password)
        .service(account::verify_email)
        .service(account::resend_verification_email);
}
