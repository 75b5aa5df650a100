//! HTTP routes, one file per area. `configure` registers every documented handler; only
//! handlers registered here reach the OpenAPI document.

pub mod account;
pub mod admin;
pub mod ai;
pub mod contacts;
pub mod ops;
mod respond;
pub mod rooms;
pub mod ws;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route: fixed paths first, then paths with parameters (see below).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(account::register)
        .service(account::login)
        .service(account::refresh_token)
        .service(account::logout)
        .service(account::get_profile)
        .service(account::update_profile)
        .service(account::change_password)
        .service(account::send_reset_password_email)
        .service(account::resend_verification_email)
        .service(contacts::send_friend_request)
        .service(contacts::view_friend_requests)
        .service(contacts::list_friends)
        .service(contacts::block_user)
        .service(contacts::list_blocked_users)
        .service(contacts::respond_block)
        .service(contacts::find_friend)
        .service(contacts::add_found_friend)
        .service(rooms::open_private_room)
        .service(rooms::create_group)
        .service(rooms::invite_to_group)
        .service(rooms::list_rooms)
        .service(ai::chat_ai)
        .service(ai::chat_ai_stream)
        .service(ai::token_balance)
        .service(ai::chat_ai_history)
        .service(ai::chat_ai_conversations)
        .service(ai::grant_ai_tokens)
        .service(admin::list_users)
        .service(admin::audit_log)
        .service(ws::open_socket)
        // Paths with parameters after every fixed path: actix tries routes in order, a fixed
        // path costs a string comparison and a parameterised one a regex, so the hot fixed
        // routes (the friends list, the rooms list) no longer run a dozen regexes first, and the
        // chat's own come first among the rest.
        .service(rooms::room_history)
        .service(rooms::send_message)
        .service(rooms::mark_read)
        .service(rooms::leave_group)
        .service(contacts::respond_friend_request)
        .service(contacts::cancel_friend_request)
        .service(contacts::remove_friend)
        .service(account::reset_password)
        .service(account::verify_email)
        .service(admin::deactivate_user)
        .service(admin::activate_user)
        .service(ws::channels_socket);
}
