//! Administration against the real server, on SQLite and PostgreSQL: user search,
//! deactivation that ends sessions and sockets at once, reactivation, and the audit log.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::ws::Ending;
use crate::common::{Backend, TestApp};
use crate::{on_both_backends, spawn_app};

on_both_backends!(admins_find_deactivate_and_reactivate_users_and_read_the_audit_log);

async fn admin_token(app: &TestApp) -> String {
    let created = app
        .command()
        .args(["createsuperuser", "--username", "root", "--email", "root@example.com"])
        .env("CHAT_SUPERUSER_PASSWORD", "an admin secret")
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    app.login("root@example.com", "an admin secret").await.body["access"].as_str().unwrap().to_owned()
}

async fn admins_find_deactivate_and_reactivate_users_and_read_the_audit_log(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    assert_eq!(app.login(&ann.email, "not her password").await.status, StatusCode::UNAUTHORIZED);
    app.post("/api/contact/block-user/", json!({"block_user_id": ann.id}), Some(&bob.access)).await;
    let admin = admin_token(&app).await;

    assert_eq!(app.get("/api/admin/users/", Some(&ann.access)).await.status, StatusCode::FORBIDDEN, "admins only");
    let found = app.get("/api/admin/users/?query=AN", Some(&admin)).await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    assert_eq!(found.body.as_array().unwrap().len(), 1);
    assert_eq!(found.body[0]["email"], ann.email, "admins see emails");
    assert_eq!(app.get("/api/admin/users/?query=bob%40ex", Some(&admin)).await.body[0]["username"], "bob");

    let mut ann_socket = app.ws_ready(&ann.access).await;
    let off = app.post(&format!("/api/admin/users/{}/deactivate/", ann.id), json!({}), Some(&admin)).await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    assert_eq!(off.body["is_active"], false);
    assert_eq!(app.get("/api/account/profile/", Some(&ann.access)).await.status, StatusCode::UNAUTHORIZED, "tokens stop at once");
    assert_eq!(app.post("/api/account/token/refresh/", json!({"refresh": ann.refresh}), None).await.status, StatusCode::UNAUTHORIZED);
    let (_, ending) = ann_socket.read_to_end(Duration::from_secs(5)).await;
    assert!(matches!(ending, Ending::Closed(Some(ref frame)) if u16::from(frame.code) == 1008), "{ending:?}");
    assert_eq!(app.login(&ann.email, &ann.password).await.status, StatusCode::FORBIDDEN, "a deactivated account cannot log in");
    let found = app.get("/api/contact/find-friend/?query=ann", Some(&admin)).await;
    assert_eq!(found.body, json!([]), "deactivated users are not found");

    let root_id = app.get("/api/account/profile/", Some(&admin)).await.body["id"].as_i64().unwrap();
    let selfish = app.post(&format!("/api/admin/users/{root_id}/deactivate/"), json!({}), Some(&admin)).await;
    assert_eq!(selfish.status, StatusCode::CONFLICT);
    assert_eq!(app.post("/api/admin/users/99999/deactivate/", json!({}), Some(&admin)).await.status, StatusCode::NOT_FOUND);

    let on = app.post(&format!("/api/admin/users/{}/activate/", ann.id), json!({}), Some(&admin)).await;
    assert_eq!(on.body["is_active"], true);
    assert_eq!(app.login(&ann.email, &ann.password).await.status, StatusCode::OK);

    let log = app.get("/api/admin/audit-log/?limit=50", Some(&admin)).await;
    assert_eq!(log.status, StatusCode::OK);
    let actions: Vec<&str> = log.body.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["login_failed", "block", "login", "admin_deactivate", "admin_activate"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert_eq!(actions[0], "login", "newest first");
    let failed = log.body.as_array().unwrap().iter().find(|e| e["action"] == "login_failed").unwrap();
    assert_eq!(failed["subject_id"], ann.id);
    assert!(failed["address"].as_str().unwrap().starts_with("127.0.0.1"));
    assert_eq!(app.get("/api/admin/audit-log/", Some(&bob.access)).await.status, StatusCode::FORBIDDEN);
}
