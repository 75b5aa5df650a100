//! Accounts over HTTP against the real server: registration, login, tokens, profile, passwords
//! and the email flows, on SQLite and PostgreSQL.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Backend, JWT_SECRET};
use crate::{on_both_backends, spawn_app};

on_both_backends!(
    register_returns_201_with_the_profile_and_tokens_and_mails_a_verification_link,
    register_reports_every_broken_rule_by_field,
    register_names_a_missing_field,
    register_rejects_an_email_or_username_taken_in_another_case_with_409,
    malformed_bodies_unknown_routes_and_big_bodies_get_the_error_shape,
    paths_work_with_and_without_the_trailing_slash,
    login_answers_unknown_email_and_wrong_password_identically,
    protected_routes_reject_missing_forged_and_swapped_tokens,
    refresh_rotates_and_reusing_an_old_refresh_token_revokes_the_session,
    the_same_refresh_token_used_twice_at_once_never_yields_two_live_sessions,
    a_retried_refresh_within_the_grace_keeps_the_session,
    logout_revokes_the_session_at_once,
    profile_updates_validate_and_refuse_a_taken_username,
    change_password_checks_the_current_one_and_logs_out_other_sessions,
    password_reset_works_end_to_end_from_the_mailed_link,
    reset_links_expire,
    access_tokens_expire,
    verification_links_work_once_and_garbage_is_rejected,
    createsuperuser_makes_an_admin_who_can_log_in,
);

fn registration(username: &str, email: &str) -> Value {
    json!({"username": username, "first_name": "Ann", "last_name": "Lee", "email": email,
           "password": "a good password", "password2": "a good password", "tc": true})
}

/// The API path behind a mailed SPA link: `http://chat.test/reset-password/7/tok` is answered by
/// `POST /api/account/reset-password/7/tok/`.
fn api_path(link: &str) -> String {
    format!("/api/account{}/", link.trim_start_matches("http://chat.test").trim_end_matches('/'))
}

fn fields(answer: &crate::common::Answer) -> Vec<String> {
    let mut keys: Vec<String> = answer.body["error"]["fields"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

async fn register_returns_201_with_the_profile_and_tokens_and_mails_a_verification_link(backend: Backend) {
    let app = spawn_app!(backend);
    let answer = app.post("/api/account/register/", registration("Ann_1", "Ann@Example.com"), None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let user = &answer.body["user"];
    assert_eq!(user["username"], "Ann_1");
    assert_eq!(user["email"], "ann@example.com", "emails are stored lower-cased");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["bio"], "");
    assert!(user["date_joined"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let access = answer.body["access"].as_str().unwrap();
    assert!(answer.body["refresh"].as_str().is_some());

    let profile = app.get("/api/account/profile/", Some(access)).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["id"], user["id"]);

    let mail = app.smtp.next_mail().await;
    assert_eq!(mail.recipients, ["ann@example.com"]);
    let link = mail.link("http://chat.test/verify-email/").expect("verification link in the mail");
    let verified = app.post(&api_path(&link), json!({}), None).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    let profile = app.get("/api/account/profile/", Some(access)).await;
    assert_eq!(profile.body["email_verified"], true);
}

async fn register_reports_every_broken_rule_by_field(backend: Backend) {
    let app = spawn_app!(backend);
    let answer = app
        .post(
            "/api/account/register/",
            json!({"username": "a b", "first_name": "x", "last_name": "y", "email": "not-an-email",
                   "password": "1234567890", "password2": "1234567890", "tc": false}),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "validation_error");
    assert_eq!(fields(&answer), ["email", "password", "tc", "username"]);

    let mismatch = app
        .post(
            "/api/account/register/",
            json!({"username": "ann", "first_name": "", "last_name": "", "email": "ann@example.com",
                   "password": "a good password", "password2": "another password", "tc": true}),
            None,
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(mismatch.body["error"]["fields"]["password2"][0], "passwords do not match");

    let short = app
        .post(
            "/api/account/register/",
            json!({"username": "ann", "first_name": "", "last_name": "", "email": "ann@example.com",
                   "password": "short", "password2": "short", "tc": true}),
            None,
        )
        .await;
    assert_eq!(fields(&short), ["password"]);
}

async fn register_names_a_missing_field(backend: Backend) {
    let app = spawn_app!(backend);
    let answer =
        app.post("/api/account/register/", json!({"username": "ann", "first_name": "A", "last_name": "B", "password": "x"}), None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "validation_error");
    assert_eq!(answer.body["error"]["fields"]["email"][0], "this field is required");

    let wrong_type = app
        .post(
            "/api/account/register/",
            json!({"username": "ann", "first_name": "A", "last_name": "B", "email": "a@example.com",
                   "password": "a good password", "password2": "a good password", "tc": "yes"}),
            None,
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&wrong_type), ["tc"]);
}

async fn register_rejects_an_email_or_username_taken_in_another_case_with_409(backend: Backend) {
    let app = spawn_app!(backend);
    assert_eq!(app.post("/api/account/register/", registration("ann", "ann@example.com"), None).await.status, StatusCode::CREATED);
    let same_email = app.post("/api/account/register/", registration("other", "ANN@example.COM"), None).await;
    assert_eq!((same_email.status, same_email.code()), (StatusCode::CONFLICT, "conflict"));
    let same_name = app.post("/api/account/register/", registration("ANN", "other@example.com"), None).await;
    assert_eq!((same_name.status, same_name.code()), (StatusCode::CONFLICT, "conflict"));
}

async fn malformed_bodies_unknown_routes_and_big_bodies_get_the_error_shape(backend: Backend) {
    let app = spawn_app!(backend, &[("JSON_BODY_LIMIT", "4096")]);
    let send_raw = |body: &'static str, content_type: &'static str| {
        app.client.post(app.url("/api/account/login/")).header("content-type", content_type).body(body).send()
    };
    let malformed = crate::common::Answer::read(send_raw("{\"email\": ", "application/json").await.unwrap()).await;
    assert_eq!((malformed.status, malformed.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    assert!(malformed.body["error"]["message"].as_str().unwrap().starts_with("malformed JSON"));

    let not_json = crate::common::Answer::read(send_raw("email=a", "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!((not_json.status, not_json.code()), (StatusCode::BAD_REQUEST, "validation_error"));

    let array = crate::common::Answer::read(send_raw("[1,2]", "application/json").await.unwrap()).await;
    assert_eq!((array.status, array.code()), (StatusCode::BAD_REQUEST, "validation_error"));

    let big = json!({"email": "a@example.com", "password": "x".repeat(10_000)});
    let too_large = app.post("/api/account/login/", big, None).await;
    assert_eq!((too_large.status, too_large.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    let unknown = app.get("/api/no/such/route/", None).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    let wrong_method = app.request(Method::DELETE, "/api/account/login/", None, None).await;
    assert_eq!((wrong_method.status, wrong_method.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    let bad_path = app.post("/api/account/verify-email/not-a-number/token/", json!({}), None).await;
    assert_eq!((bad_path.status, bad_path.code()), (StatusCode::BAD_REQUEST, "validation_error"));
}

async fn paths_work_with_and_without_the_trailing_slash(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    assert_eq!(app.get("/api/account/profile", Some(&user.access)).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/account/profile/", Some(&user.access)).await.status, StatusCode::OK);
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.body["status"], "ok");

    let spec = app.get("/api/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["paths"]["/api/account/register/"]["post"].is_object());
    let docs = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"), "the interactive docs are served offline");
}

async fn login_answers_unknown_email_and_wrong_password_identically(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let ok = app.login("ANN@example.com", &user.password).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["user"]["id"], user.id);
    assert_ne!(ok.body["refresh"], user.refresh.as_str(), "a second login is a second session");

    let wrong_password = app.login(&user.email, "not the password").await;
    let unknown_email = app.login("nobody@example.com", "not the password").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.code(), "invalid_credentials");
    assert_eq!(wrong_password.status, unknown_email.status);
    assert_eq!(wrong_password.body, unknown_email.body);
}

/// A token signed with `key` and header `alg`, or unsigned for `alg: none`.
fn forge(alg: &str, claims: Value, key: &[u8]) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    if alg == "none" {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        return format!("{header}.{payload}.");
    }
    let algorithm = match alg {
        "HS512" => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    encode(&Header::new(algorithm), &claims, &EncodingKey::from_secret(key)).unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn protected_routes_reject_missing_forged_and_swapped_tokens(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let profile = |token: Option<String>| {
        let app = &app;
        async move { app.get("/api/account/profile/", token.as_deref()).await }
    };
    let missing = profile(None).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::UNAUTHORIZED, "not_authenticated"));
    let garbage = profile(Some("not.a.jwt".into())).await;
    assert_eq!(garbage.code(), "not_authenticated");
    let scheme =
        app.client.get(app.url("/api/account/profile/")).header("authorization", format!("Token {}", user.access)).send().await.unwrap();
    assert_eq!(scheme.status(), StatusCode::UNAUTHORIZED);

    let mut claims = claims_of(&user.access);
    assert_eq!(claims["typ"], "access");
    let unsigned = profile(Some(forge("none", claims.clone(), b""))).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "alg: none is refused");
    let wrong_key = profile(Some(forge("HS256", claims.clone(), b"an attacker's guess at the secret key"))).await;
    assert_eq!(wrong_key.status, StatusCode::UNAUTHORIZED, "a token signed with another key is refused");
    let other_alg = profile(Some(forge("HS512", claims.clone(), JWT_SECRET.as_bytes()))).await;
    assert_eq!(other_alg.status, StatusCode::UNAUTHORIZED, "only HS256 is accepted");
    let genuine = profile(Some(forge("HS256", claims.clone(), JWT_SECRET.as_bytes()))).await;
    assert_eq!(genuine.status, StatusCode::OK, "control: the right key and algorithm pass");
    claims["sub"] = json!((user.id + 1).to_string());
    let other_user = profile(Some(forge("HS256", claims, JWT_SECRET.as_bytes()))).await;
    assert_eq!(other_user.status, StatusCode::UNAUTHORIZED, "a session belongs to one user");

    let refresh_as_access = profile(Some(user.refresh.clone())).await;
    assert_eq!(refresh_as_access.status, StatusCode::UNAUTHORIZED, "a refresh token is not an access token");
    let access_as_refresh = app.post("/api/account/token/refresh/", json!({"refresh": user.access}), None).await;
    assert_eq!(access_as_refresh.status, StatusCode::UNAUTHORIZED, "an access token is not a refresh token");
}

async fn refresh_rotates_and_reusing_an_old_refresh_token_revokes_the_session(backend: Backend) {
    // Without the grace a mobile client's retry gets (tested below), reuse is reuse at once.
    let app = spawn_app!(backend, &[("REFRESH_REUSE_GRACE", "0")]);
    let user = app.register("ann").await;
    let first = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let (access2, refresh2) = (first.body["access"].as_str().unwrap(), first.body["refresh"].as_str().unwrap());
    assert_ne!(refresh2, user.refresh);
    assert_eq!(app.get("/api/account/profile/", Some(access2)).await.status, StatusCode::OK);

    let reuse = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!((reuse.status, reuse.code()), (StatusCode::UNAUTHORIZED, "not_authenticated"));
    let after = app.post("/api/account/token/refresh/", json!({"refresh": refresh2}), None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the whole family is revoked after reuse");
    assert_eq!(app.get("/api/account/profile/", Some(access2)).await.status, StatusCode::UNAUTHORIZED);

    let other_session = app.login(&user.email, &user.password).await;
    let other_access = other_session.body["access"].as_str().unwrap();
    assert_eq!(app.get("/api/account/profile/", Some(other_access)).await.status, StatusCode::OK, "other sessions live on");
}

async fn the_same_refresh_token_used_twice_at_once_never_yields_two_live_sessions(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let body = json!({"refresh": user.refresh});
    let (a, b) = tokio::join!(
        app.post("/api/account/token/refresh/", body.clone(), None),
        app.post("/api/account/token/refresh/", body.clone(), None)
    );
    // Within the grace both are answered, with pairs of the one session: the same refresh jti.
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    let claims = |token: &Value| {
        let payload = token.as_str().unwrap().split('.').nth(1).unwrap().to_owned();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
        let claims: Value = serde_json::from_slice(&decoded).unwrap();
        (claims["sid"].clone(), claims["jti"].clone())
    };
    assert_eq!(claims(&a.body["refresh"]), claims(&b.body["refresh"]), "one session, one current refresh token");
    let next = app.post("/api/account/token/refresh/", json!({"refresh": a.body["refresh"]}), None).await;
    assert_eq!(next.status, StatusCode::OK, "the session lives on");
}

/// #18: a refresh whose answer was lost is retried with the same token: within
/// `REFRESH_REUSE_GRACE` the retry gets the session's current pair instead of revoking it, and
/// token answers say when their tokens expire.
async fn a_retried_refresh_within_the_grace_keeps_the_session(backend: Backend) {
    let app = spawn_app!(backend, &[("REFRESH_REUSE_GRACE", "2")]);
    let user = app.register("ann").await;
    let lost = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!(lost.status, StatusCode::OK);
    assert_eq!((lost.body["expires_in"].as_u64(), lost.body["refresh_expires_in"].as_u64()), (Some(900), Some(604_800)), "{:?}", lost.body);
    let retry = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(app.get("/api/account/profile/", Some(retry.body["access"].as_str().unwrap())).await.status, StatusCode::OK);
    let onwards = app.post("/api/account/token/refresh/", json!({"refresh": retry.body["refresh"]}), None).await;
    assert_eq!(onwards.status, StatusCode::OK, "the retry's refresh token is the current one");
    // After the grace, the old token is reuse again: the family is revoked.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = app.post("/api/account/token/refresh/", json!({"refresh": retry.body["refresh"]}), None).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    let current = app.post("/api/account/token/refresh/", json!({"refresh": onwards.body["refresh"]}), None).await;
    assert_eq!(current.status, StatusCode::UNAUTHORIZED, "the whole family went");
}

async fn logout_revokes_the_session_at_once(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let second = app.login(&user.email, &user.password).await;
    let second_access = second.body["access"].as_str().unwrap();

    let stranger = app.register("bob").await;
    let foreign = app.post("/api/account/logout/", json!({"refresh": user.refresh}), Some(&stranger.access)).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "nobody logs out another user's session");

    let out = app.post("/api/account/logout/", json!({"refresh": user.refresh}), Some(&user.access)).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.body, json!({}));
    assert_eq!(app.get("/api/account/profile/", Some(&user.access)).await.status, StatusCode::UNAUTHORIZED);
    let refresh = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/account/profile/", Some(second_access)).await.status, StatusCode::OK, "the other device stays logged in");

    let bad = app.post("/api/account/logout/", json!({"refresh": "garbage"}), Some(second_access)).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "validation_error"));
}

async fn profile_updates_validate_and_refuse_a_taken_username(backend: Backend) {
    let app = spawn_app!(backend);
    let ann = app.register("ann").await;
    app.register("bob").await;
    let updated = app
        .patch("/api/account/profile/", json!({"first_name": "  Annie ", "bio": "Hello\nthere", "username": "Ann.L"}), Some(&ann.access))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["first_name"], "Annie");
    assert_eq!(updated.body["bio"], "Hello\nthere");
    assert_eq!(updated.body["username"], "Ann.L");
    assert_eq!(updated.body["last_name"], "ann", "absent fields stay");

    let taken = app.patch("/api/account/profile/", json!({"username": "BOB"}), Some(&ann.access)).await;
    assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "conflict"));
    let own_in_other_case = app.patch("/api/account/profile/", json!({"username": "ann.l"}), Some(&ann.access)).await;
    assert_eq!(own_in_other_case.status, StatusCode::OK, "changing the case of one's own name is fine");
    let too_long = app.patch("/api/account/profile/", json!({"bio": "x".repeat(501), "username": "x"}), Some(&ann.access)).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&too_long), ["bio", "username"]);
    let unchanged = app.get("/api/account/profile/", Some(&ann.access)).await;
    assert_eq!(unchanged.body["username"], "ann.l", "a rejected update changes nothing");
    let empty = app.patch("/api/account/profile/", json!({}), Some(&ann.access)).await;
    assert_eq!(empty.status, StatusCode::OK);
}

async fn change_password_checks_the_current_one_and_logs_out_other_sessions(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let other = app.login(&user.email, &user.password).await;
    let (other_access, other_refresh) = (other.body["access"].as_str().unwrap(), other.body["refresh"].as_str().unwrap());

    let wrong = app
        .post(
            "/api/account/change_password/",
            json!({"current_password": "nope", "password": "brand new pw", "password2": "brand new pw"}),
            Some(&user.access),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&wrong), ["current_password"]);
    let mismatch = app
        .post(
            "/api/account/change_password/",
            json!({"current_password": user.password, "password": "brand new pw", "password2": "brand new px"}),
            Some(&user.access),
        )
        .await;
    assert_eq!(fields(&mismatch), ["password2"]);

    let changed = app
        .post(
            "/api/account/change_password/",
            json!({"current_password": user.password, "password": "brand new pw", "password2": "brand new pw"}),
            Some(&user.access),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(app.get("/api/account/profile/", Some(&user.access)).await.status, StatusCode::OK, "this session stays");
    assert_eq!(app.get("/api/account/profile/", Some(other_access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.post("/api/account/token/refresh/", json!({"refresh": other_refresh}), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&user.email, &user.password).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&user.email, "brand new pw").await.status, StatusCode::OK);
}

async fn password_reset_works_end_to_end_from_the_mailed_link(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let _verification = app.smtp.next_mail().await;

    let unknown = app.post("/api/account/send-reset-password-email/", json!({"email": "nobody@example.com"}), None).await;
    let known = app.post("/api/account/send-reset-password-email/", json!({"email": "ANN@example.com"}), None).await;
    assert_eq!((unknown.status, &unknown.body), (known.status, &known.body), "no hint whether the account exists");
    assert_eq!(known.status, StatusCode::OK);

    let mail = app.smtp.next_mail().await;
    assert_eq!(mail.recipients, std::slice::from_ref(&user.email), "only the existing account gets a mail");
    assert_eq!(mail.header("Subject").as_deref(), Some("Reset your password"));
    let link = mail.link("http://chat.test/reset-password/").expect("reset link");
    let path = api_path(&link);
    assert!(!mail.body().contains(&user.password));

    let weak = app.post(&path, json!({"password": "123456789", "password2": "123456789"}), None).await;
    assert_eq!(fields(&weak), ["password"]);
    let reset = app.post(&path, json!({"password": "a fresh secret", "password2": "a fresh secret"}), None).await;
    assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);

    assert_eq!(app.get("/api/account/profile/", Some(&user.access)).await.status, StatusCode::UNAUTHORIZED, "sessions end");
    assert_eq!(app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&user.email, &user.password).await.status, StatusCode::UNAUTHORIZED);
    let login = app.login(&user.email, "a fresh secret").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["user"]["email_verified"], true, "the reset link proved the address");

    let again = app.post(&path, json!({"password": "yet another one", "password2": "yet another one"}), None).await;
    assert_eq!((again.status, again.code()), (StatusCode::BAD_REQUEST, "validation_error"), "a reset link works once");
    let (uid, token) = path.trim_matches('/').trim_start_matches("api/account/reset-password/").split_once('/').unwrap();
    let other_uid = format!("/api/account/reset-password/{}/{token}/", uid.parse::<i64>().unwrap() + 1);
    assert_eq!(
        app.post(&other_uid, json!({"password": "yet another one", "password2": "yet another one"}), None).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(app.smtp.try_next_mail(Duration::from_millis(300)).await.is_none(), "the unknown email got no mail");
}

async fn reset_links_expire(backend: Backend) {
    let app = spawn_app!(backend, &[("RESET_TOKEN_TTL", "1")]);
    let user = app.register("ann").await;
    let _verification = app.smtp.next_mail().await;
    app.post("/api/account/send-reset-password-email/", json!({"email": user.email}), None).await;
    let link = app.smtp.next_mail().await.link("http://chat.test/reset-password/").unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = app.post(&api_path(&link), json!({"password": "a fresh secret", "password2": "a fresh secret"}), None).await;
    assert_eq!((late.status, late.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    assert_eq!(app.login(&user.email, &user.password).await.status, StatusCode::OK, "the password is unchanged");
}

async fn access_tokens_expire(backend: Backend) {
    let app = spawn_app!(backend, &[("ACCESS_TOKEN_TTL", "1")]);
    let user = app.register("ann").await;
    assert_eq!(app.get("/api/account/profile/", Some(&user.access)).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = app.get("/api/account/profile/", Some(&user.access)).await;
    assert_eq!((expired.status, expired.code()), (StatusCode::UNAUTHORIZED, "not_authenticated"));
    assert_eq!(expired.body["error"]["message"], "token has expired");
    let renewed = app.post("/api/account/token/refresh/", json!({"refresh": user.refresh}), None).await;
    assert_eq!(renewed.status, StatusCode::OK, "the refresh token outlives the access token");
}

async fn verification_links_work_once_and_garbage_is_rejected(backend: Backend) {
    let app = spawn_app!(backend);
    let user = app.register("ann").await;
    let link = app.smtp.next_mail().await.link("http://chat.test/verify-email/").unwrap();
    let path = api_path(&link);
    let garbage = app.post(&format!("/api/account/verify-email/{}/garbage/", user.id), json!({}), None).await;
    assert_eq!((garbage.status, garbage.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    assert_eq!(app.post(&path, json!({}), None).await.status, StatusCode::OK);
    assert_eq!(app.post(&path, json!({}), None).await.status, StatusCode::OK, "opening the link again is harmless");
    let resend = app.post("/api/account/resend-verification-email/", json!({}), Some(&user.access)).await;
    assert_eq!(resend.status, StatusCode::OK);
    assert!(app.smtp.try_next_mail(Duration::from_millis(500)).await.is_none(), "no new mail once verified");
}

async fn createsuperuser_makes_an_admin_who_can_log_in(backend: Backend) {
    let app = spawn_app!(backend);
    let output = app
        .command()
        .args(["createsuperuser", "--username", "root", "--email", "root@example.com"])
        .env("CHAT_SUPERUSER_PASSWORD", "an admin secret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let login = app.login("root@example.com", "an admin secret").await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    assert_eq!(login.body["user"]["email_verified"], true);

    let duplicate = app
        .command()
        .args(["createsuperuser", "--username", "root", "--email", "root@example.com"])
        .env("CHAT_SUPERUSER_PASSWORD", "an admin secret")
        .output()
        .unwrap();
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
}

#[tokio::test]
async fn common_passwords_are_refused() {
    let app = spawn_app!(Backend::Sqlite);
    let answer = app
        .post(
            "/api/account/register/",
            json!({"username": "ann", "first_name": "", "last_name": "", "email": "ann@example.com",
                   "password": "Password1", "password2": "Password1", "tc": true}),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body["error"]["fields"]["password"][0].as_str().unwrap().contains("too common"));
}
