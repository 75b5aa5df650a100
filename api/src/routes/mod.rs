//! HTTP routes, one file per area. `configure` registers every documented handler; only
//! handlers registered here reach the OpenAPI document.

pub mod account;
pub mod admin;
pub mod ai;
pub mod contacts;
pub mod ops;
pub mod rooms;
pub mod ws;

use utoipa_actix_web::service_config::ServiceConfig;

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
        .service(account::reset_password)
        .service(account::verify_email)
        .service(account::resend_verification_email)
        .service(contacts::send_friend_request)
        .service(contacts::view_friend_requests)
        .service(contacts::respond_friend_request)
        .service(contacts::cancel_friend_request)
        .service(contacts::list_friends)
        .service(contacts::remove_friend)
        .service(contacts::block_user)
        .service(contacts::list_blocked_users)
        .service(contacts::respond_block)
        .service(contacts::find_friend)
        .service(contacts::add_found_friend)
        .service(rooms::open_private_room)
        .service(rooms::create_group)
        .service(rooms::invite_to_group)
        .service(rooms::leave_group)
        .service(rooms::list_rooms)
        .service(rooms::room_history)
        .service(rooms::send_message)
        .service(rooms::mark_read)
        .service(ai::chat_ai)
        .service(ai::chat_ai_stream)
        .service(ai::token_balance)
        .service(ai::chat_ai_history)
        .service(ai::chat_ai_conversations)
        .service(ai::grant_ai_tokens)
        .service(admin::list_users)
        .service(admin::deactivate_user)
        .service(admin::activate_user)
        .service(admin::audit_log)
        .service(ws::open_socket)
        .service(ws::channels_socket);
}
