//! Start-up and operations: defaults that work on a fresh machine, the mail outbox, the
//! generated signing key, and the `migrate` command.

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::Backend;
use crate::{on_both_backends, spawn_app};

on_both_backends!(migrate_applies_the_schema_once_and_is_idempotent);

async fn migrate_applies_the_schema_once_and_is_idempotent(backend: Backend) {
    let app = spawn_app!(backend);
    for _ in 0..2 {
        let output = app.command().arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    app.register("ann").await;
}

/// With no `DATABASE_URL`, no `JWT_SECRET` and no `SMTP_URL`, the server keeps everything under
/// `DATA_DIR`: the SQLite file, a generated signing key that survives restarts, and mails as
/// `.eml` files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_machine_needs_no_configuration() {
    let mut app = spawn_app!(Backend::Sqlite, &[("DATABASE_URL", ""), ("JWT_SECRET", ""), ("SMTP_URL", "")]);
    let user = app.register("ann").await;
    assert!(app.data_dir.path().join("chat.db").exists(), "the default SQLite file is under DATA_DIR");
    let key_file = app.data_dir.path().join("jwt_secret");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let outbox = app.data_dir.path().join("outbox");
    let mut mail = None;
    for _ in 0..100 {
        if let Some(entry) = std::fs::read_dir(&outbox).ok().and_then(|mut d| d.next()) {
            mail = Some(std::fs::read_to_string(entry.unwrap().path()).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = crate::common::smtp::decode_quoted_printable(&mail.expect("a .eml file in the outbox"));
    assert!(mail.contains("To: ann@example.com"));
    assert!(mail.contains("http://chat.test/verify-email/"));

    app.kill();
    app.start_server().await;
    let profile = app.get("/api/account/profile/", Some(&user.access)).await;
    assert_eq!(profile.status, StatusCode::OK, "tokens survive a restart: the key was kept");
}

#[tokio::test]
async fn the_server_refuses_to_start_with_a_bad_configuration() {
    let app = spawn_app!(Backend::Sqlite);
    let short_secret = app.command().env("JWT_SECRET", "short").output().unwrap();
    assert!(!short_secret.status.success());
    assert!(String::from_utf8_lossy(&short_secret.stderr).contains("JWT_SECRET"));
    let bad_url = app.command().env("DATABASE_URL", "mysql://nope").output().unwrap();
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("DATABASE_URL"));
}

/// With `STATIC_DIR`, the SPA is served at `/` and client routes fall back to `index.html`,
/// while API paths and missing asset files keep their JSON 404.
#[tokio::test]
async fn the_built_spa_is_served_with_client_route_fallback() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("assets")).unwrap();
    std::fs::write(site.path().join("index.html"), "<!doctype html><title>Chat</title>").unwrap();
    std::fs::write(site.path().join("assets/app-123.js"), "console.log('chat')").unwrap();
    let dir = site.path().to_str().unwrap().to_owned();
    let app = spawn_app!(Backend::Sqlite, &[("STATIC_DIR", dir.as_str())]);
    for path in ["/", "/chat/7", "/reset-password/1/token"] {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert!(page.text().await.unwrap().contains("<title>Chat</title>"), "{path} is the SPA");
    }
    let asset = app.client.get(app.url("/assets/app-123.js")).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(asset.headers()["content-type"].to_str().unwrap().contains("javascript"));
    for path in ["/assets/missing.js", "/api/no/such/route/"] {
        let missing = app.get(path, None).await;
        assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    let post = app.post("/somewhere", serde_json::json!({}), None).await;
    assert_eq!(post.code(), "not_found");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

/// With limits on: repeated failed logins of one account, registrations from one address and a
/// flood of WebSocket sends get `429 rate_limited` with `Retry-After`; others are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_is_rate_limited_with_retry_after() {
    let app = spawn_app!(Backend::Sqlite, &[("RATE_LIMIT_SCALE", "1")]);
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let users = app.friends(&["cat", "dan"]).await;
    for _ in 0..5 {
        assert_eq!(app.login(&ann.email, "wrong password").await.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .client
        .post(app.url("/api/account/login/"))
        .json(&serde_json::json!({"email": ann.email, "password": ann.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits after 5 failures");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(app.login(&bob.email, &bob.password).await.status, StatusCode::OK, "other accounts are unaffected");

    // Registrations from one address: a burst of 5 per hour (4 were used above).
    let mut statuses = Vec::new();
    for i in 0..2 {
        let email = format!("new{i}@example.com");
        let answer = app
            .post(
                "/api/account/register/",
                serde_json::json!({"username": format!("new{i}"), "first_name": "N", "last_name": "N", "email": email,
                                   "password": "a good password", "password2": "a good password", "tc": true}),
                None,
            )
            .await;
        statuses.push(answer.status.as_u16());
    }
    assert_eq!(statuses, [201, 429]);

    // A WebSocket connection: bursts of 50 sends, then 20 a second.
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ws = app.ws_ready(&users[0].access).await;
    for n in 0..60 {
        ws.send(serde_json::json!({"type": "send", "room_id": room, "client_id": format!("f{n}"), "body": "flood"})).await;
    }
    let limited = ws.next_of("error").await;
    assert_eq!(limited["code"], "rate_limited");
    ws.send(serde_json::json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong", "the connection stays open");
}

/// `/metrics` reports what happened, in the Prometheus text format; responses carry the
/// security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_connections_and_messages() {
    let app = spawn_app!(Backend::Sqlite);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ann = app.ws_ready(&users[0].access).await;
    let _bob = app.ws_ready(&users[1].access).await;
    ann.send(serde_json::json!({"type": "send", "room_id": room, "client_id": "m1", "body": "hi"})).await;
    ann.next_of("ack").await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    assert_eq!(value("chat_websocket_connections"), 2.0);
    assert_eq!(value("chat_users_online"), 2.0);
    assert_eq!(value("chat_messages_stored_total"), 1.0);
    assert!(value("chat_messages_delivered_total") >= 2.0, "the ack and bob's copy");
    assert!(value("chat_http_responses_total{status=\"2xx\"}") >= 5.0);
    assert_eq!(value("chat_writer_batch_size_count"), 1.0);
    assert!(text.contains("chat_http_request_duration_seconds_bucket{le=\"+Inf\"}"));
}

/// Browsers on origins of `CORS_ORIGINS` may call the API; others get no CORS grant; the
/// API's own origin always works.
#[tokio::test]
async fn cors_grants_listed_origins_only() {
    let app = spawn_app!(Backend::Sqlite, &[("CORS_ORIGINS", "http://app.example")]);
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/account/login/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://app.example").await.unwrap();
    assert_eq!(allowed.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some("http://app.example"));
    let refused = preflight("http://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none(), "no grant for an unlisted origin");
    let own_origin = app.address.clone();
    let same = app
        .client
        .post(app.url("/api/account/login/"))
        .header("origin", own_origin)
        .json(&serde_json::json!({"email": "nobody@example.com", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::UNAUTHORIZED, "a same-origin request reaches the API");
}

/// With the mail server down, a reset request still answers at once; the mail goes out when
/// the server is back (the mailer retries after 2 s and 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_request_answers_while_smtp_is_down_and_the_mail_follows_later() {
    let port = crate::common::free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app!(Backend::Sqlite, &[("SMTP_URL", smtp_url.as_str())]);
    let user = app.register("ann").await;
    let started = std::time::Instant::now();
    let answer = app.post("/api/account/send-reset-password-email/", serde_json::json!({"email": user.email}), None).await;
    assert_eq!(answer.status, StatusCode::OK, "the request answers although no mail server listens");
    assert!(started.elapsed() < Duration::from_secs(2), "without waiting on the mail server");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let smtp = crate::common::SmtpServer::start_on(port).await;
    let mut subjects = Vec::new();
    while let Some(mail) = smtp.try_next_mail(Duration::from_secs(15)).await {
        subjects.push(mail.header("Subject").unwrap_or_default());
        if subjects.iter().any(|s| s == "Reset your password") {
            break;
        }
    }
    assert!(subjects.iter().any(|s| s == "Reset your password"), "the reset mail was retried and delivered: {subjects:?}");
    assert!(app.server_log().contains("mail delivery failed"), "the failure was reported in the log");
}

/// Another process holding the SQLite write lock beyond the busy timeout: writes answer 503
/// (retry later), reads go on, and the server recovers once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_and_the_server_recovers() {
    let app = spawn_app!(Backend::Sqlite);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    // Hold the write lock for 7 s from another connection (the server waits 5 s at most).
    let holder = std::thread::spawn(move || {
        use diesel::connection::SimpleConnection;
        use diesel::{Connection, SqliteConnection};
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.batch_execute("COMMIT").unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = app.get(&format!("/api/contact/chat-room/message/{room}/"), Some(&users[0].access)).await;
    assert_eq!(read.status, StatusCode::OK, "reads go on beside the lock (WAL)");
    let write = app
        .post(
            &format!("/api/contact/chat-room/message/{room}/"),
            serde_json::json!({"body": "hi", "client_id": "w1"}),
            Some(&users[0].access),
        )
        .await;
    assert_eq!((write.status, write.code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"), "{:?}", write.body);
    holder.join().unwrap();
    let retry = app
        .post(
            &format!("/api/contact/chat-room/message/{room}/"),
            serde_json::json!({"body": "hi", "client_id": "w1"}),
            Some(&users[0].access),
        )
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "the same client_id goes through once the lock is gone");
    assert_eq!(app.all_seqs(&users[0], room).await, [1], "stored once");
}
