//! Contacts over HTTP against the real server, on SQLite and PostgreSQL: friend requests,
//! friends, blocks and people search, including simultaneous mutual requests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, TestUser};
use crate::{on_both_backends, spawn_app};

on_both_backends!(
    a_request_can_be_viewed_accepted_once_and_makes_friends_on_both_sides,
    rejected_and_cancelled_requests_follow_the_rules_of_who_may_do_what,
    a_request_back_to_someone_who_asked_first_makes_friends_at_once,
    users_asking_each_other_at_the_same_instant_end_as_one_friendship,
    bad_friend_requests_get_the_contract_errors,
    blocking_ends_friendship_and_requests_and_stops_new_ones_both_ways,
    friends_can_be_removed_by_either_side,
    search_matches_name_prefixes_and_exact_email_with_relations,
    search_hides_the_caller_and_both_sides_of_a_block_and_pages,
    search_validates_its_parameters,
    the_find_friend_post_sends_a_request,
);

async fn send(app: &TestApp, from: &TestUser, to: i64) -> crate::common::Answer {
    app.post("/api/contact/friend-request/", json!({"receiver_id": to}), Some(&from.access)).await
}

async fn respond(app: &TestApp, who: &TestUser, request_id: &Value, action: &str) -> crate::common::Answer {
    app.post(&format!("/api/contact/friend-requests/respond/{request_id}/"), json!({"action": action}), Some(&who.access)).await
}

async fn friend_ids(app: &TestApp, user: &TestUser) -> Vec<i64> {
    let answer = app.get("/api/contact/friends/", Some(&user.access)).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.body.as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect()
}

async fn usernames(app: &TestApp, user: &TestUser, query: &str) -> Vec<String> {
    let answer = app.get(&format!("/api/contact/find-friend/?{query}"), Some(&user.access)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

/// Asserts that no email address appears anywhere in `value`.
fn assert_no_email(value: &Value) {
    assert!(!value.to_string().contains("@example.com"), "an email leaked: {value}");
}

async fn a_request_can_be_viewed_accepted_once_and_makes_friends_on_both_sides(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let sent = send(&app, &ann, bob.id).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "pending");
    assert_eq!(sent.body["sender"]["id"], ann.id);
    assert_eq!(sent.body["receiver"]["username"], "bob");
    assert_eq!(sent.body["receiver"]["online"], false);
    assert_no_email(&sent.body);

    let bobs = app.get("/api/contact/friend-request/view/", Some(&bob.access)).await;
    assert_eq!(bobs.body["received"].as_array().unwrap().len(), 1);
    assert_eq!(bobs.body["sent"], json!([]));
    let anns = app.get("/api/contact/friend-request/view/", Some(&ann.access)).await;
    assert_eq!(anns.body["sent"][0]["id"], sent.body["id"]);

    let again = send(&app, &ann, bob.id).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict"), "one pending request per pair");

    let accepted = respond(&app, &bob, &sent.body["id"], "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(friend_ids(&app, &ann).await, [bob.id]);
    assert_eq!(friend_ids(&app, &bob).await, [ann.id]);
    assert_no_email(&app.get("/api/contact/friends/", Some(&ann.access)).await.body);

    let twice = respond(&app, &bob, &sent.body["id"], "reject").await;
    assert_eq!((twice.status, twice.code()), (StatusCode::CONFLICT, "conflict"), "answering twice");
    let already = send(&app, &bob, ann.id).await;
    assert_eq!((already.status, already.code()), (StatusCode::CONFLICT, "conflict"), "already friends");
    let views = app.get("/api/contact/friend-request/view/", Some(&bob.access)).await;
    assert_eq!(views.body, json!({"received": [], "sent": []}), "only pending requests are listed");
}

async fn rejected_and_cancelled_requests_follow_the_rules_of_who_may_do_what(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let first = send(&app, &ann, bob.id).await;
    assert_eq!(respond(&app, &ann, &first.body["id"], "accept").await.status, StatusCode::FORBIDDEN, "the sender cannot answer");
    assert_eq!(respond(&app, &cat, &first.body["id"], "accept").await.status, StatusCode::NOT_FOUND, "a stranger cannot see it");
    let bad_action = respond(&app, &bob, &first.body["id"], "maybe").await;
    assert_eq!((bad_action.status, bad_action.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    let rejected = respond(&app, &bob, &first.body["id"], "reject").await;
    assert_eq!(rejected.body["status"], "rejected");
    assert!(friend_ids(&app, &ann).await.is_empty());

    let second = send(&app, &ann, bob.id).await;
    assert_eq!(second.status, StatusCode::CREATED, "asking again after a rejection is allowed");
    let id = second.body["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/contact/friend-request/{id}/"), Some(&bob.access)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/contact/friend-request/{id}/"), Some(&cat.access)).await.status, StatusCode::NOT_FOUND);
    let cancelled = app.delete(&format!("/api/contact/friend-request/{id}/"), Some(&ann.access)).await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    let again = app.delete(&format!("/api/contact/friend-request/{id}/"), Some(&ann.access)).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict"));
    let accept_cancelled = respond(&app, &bob, &second.body["id"], "accept").await;
    assert_eq!(accept_cancelled.status, StatusCode::CONFLICT);
    assert_eq!(app.delete("/api/contact/friend-request/999999/", Some(&ann.access)).await.status, StatusCode::NOT_FOUND);
}

async fn a_request_back_to_someone_who_asked_first_makes_friends_at_once(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let asked = send(&app, &ann, bob.id).await;
    let back = send(&app, &bob, ann.id).await;
    assert_eq!(back.status, StatusCode::CREATED);
    assert_eq!(back.body["status"], "accepted");
    assert_eq!(back.body["id"], asked.body["id"], "the existing request is the one accepted");
    assert_eq!(friend_ids(&app, &ann).await, [bob.id]);
    assert_eq!(friend_ids(&app, &bob).await, [ann.id]);
}

async fn users_asking_each_other_at_the_same_instant_end_as_one_friendship(backend: Backend) {
    let app = spawn_app!(backend);
    let mut pairs = Vec::new();
    for i in 0..8 {
        pairs.push((app.register(&format!("left{i}")).await, app.register(&format!("right{i}")).await));
    }
    let races = pairs.iter().map(|(a, b)| async { tokio::join!(send(&app, a, b.id), send(&app, b, a.id)) });
    for (x, y) in futures_util::future::join_all(races).await {
        for answer in [&x, &y] {
            assert_eq!(answer.status, StatusCode::CREATED, "no error in a simultaneous request: {:?}", answer.body);
        }
        let statuses = [x.body["status"].as_str().unwrap(), y.body["status"].as_str().unwrap()];
        assert!(statuses.contains(&"accepted"), "one of the two requests became the friendship: {statuses:?}");
    }
    for (a, b) in &pairs {
        assert_eq!(friend_ids(&app, a).await, [b.id], "exactly one friendship row each way");
        assert_eq!(friend_ids(&app, b).await, [a.id]);
        let pending = app.get("/api/contact/friend-request/view/", Some(&a.access)).await;
        assert_eq!(pending.body, json!({"received": [], "sent": []}), "no pending request is left behind");
    }
}

async fn bad_friend_requests_get_the_contract_errors(backend: Backend) {
    let app = spawn_app!(backend);
    let ann = app.register("ann").await;
    let to_self = send(&app, &ann, ann.id).await;
    assert_eq!((to_self.status, to_self.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    assert!(to_self.body["error"]["fields"]["receiver_id"].is_array());
    let unknown = send(&app, &ann, 424242).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    let wrong_type = app.post("/api/contact/friend-request/", json!({"receiver_id": "bob"}), Some(&ann.access)).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    let anonymous = app.post("/api/contact/friend-request/", json!({"receiver_id": 1}), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let bad_id = app.post("/api/contact/friend-requests/respond/abc/", json!({"action": "accept"}), Some(&ann.access)).await;
    assert_eq!((bad_id.status, bad_id.code()), (StatusCode::BAD_REQUEST, "validation_error"));
}

async fn blocking_ends_friendship_and_requests_and_stops_new_ones_both_ways(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    app.befriend(&ann, &bob).await;
    let pending = send(&app, &cat, ann.id).await;

    let blocked = app.post("/api/contact/block-user/", json!({"block_user_id": bob.id}), Some(&ann.access)).await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{:?}", blocked.body);
    assert_eq!(blocked.body["id"], bob.id);
    assert!(friend_ids(&app, &ann).await.is_empty(), "the friendship ends for the blocker");
    assert!(friend_ids(&app, &bob).await.is_empty(), "and for the blocked");
    for (from, to) in [(&ann, &bob), (&bob, &ann)] {
        let across = send(&app, from, to.id).await;
        assert_eq!((across.status, across.code()), (StatusCode::FORBIDDEN, "forbidden"), "no request across a block");
    }

    assert_eq!(app.post("/api/contact/block-user/", json!({"block_user_id": cat.id}), Some(&ann.access)).await.status, StatusCode::CREATED);
    let cats = app.get("/api/contact/friend-request/view/", Some(&cat.access)).await;
    assert_eq!(cats.body["sent"], json!([]), "a block cancels pending requests");
    assert_eq!(respond(&app, &ann, &pending.body["id"], "accept").await.status, StatusCode::CONFLICT);

    let list = app.get("/api/contact/blocked-users/", Some(&ann.access)).await;
    let names: Vec<&str> = list.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "cat"]);
    assert_no_email(&list.body);
    assert_eq!(
        app.post("/api/contact/block-user/", json!({"block_user_id": bob.id}), Some(&ann.access)).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.post("/api/contact/block-user/", json!({"block_user_id": ann.id}), Some(&ann.access)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.post("/api/contact/block-user/", json!({"block_user_id": 777777}), Some(&ann.access)).await.status,
        StatusCode::NOT_FOUND
    );

    let unblock = json!({"user_id": bob.id, "action": "unblock"});
    let bad_action =
        app.post("/api/contact/block-requests/respond/", json!({"user_id": bob.id, "action": "block"}), Some(&ann.access)).await;
    assert_eq!(bad_action.status, StatusCode::BAD_REQUEST);
    let done = app.post("/api/contact/block-requests/respond/", unblock.clone(), Some(&ann.access)).await;
    assert_eq!((done.status, &done.body), (StatusCode::OK, &json!({})));
    assert_eq!(app.post("/api/contact/block-requests/respond/", unblock, Some(&ann.access)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(&app, &bob, ann.id).await.status, StatusCode::CREATED, "after unblocking, requests work again");
}

async fn friends_can_be_removed_by_either_side(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    assert_eq!(app.delete(&format!("/api/contact/friends/{}/", ann.id), Some(&bob.access)).await.status, StatusCode::NO_CONTENT);
    assert!(friend_ids(&app, &ann).await.is_empty());
    assert!(friend_ids(&app, &bob).await.is_empty());
    let again = app.delete(&format!("/api/contact/friends/{}/", bob.id), Some(&ann.access)).await;
    assert_eq!((again.status, again.code()), (StatusCode::NOT_FOUND, "not_found"));
}

async fn search_matches_name_prefixes_and_exact_email_with_relations(backend: Backend) {
    let app = spawn_app!(backend);
    let me = app.register_named("seeker", "Sam", "Searcher").await;
    let jo = app.register_named("jo_smith", "Joanna", "Smith").await;
    let jorg = app.register_named("xander", "Jörg", "Weiß").await;
    let mary = app.register_named("mary", "Mary", "Johnson").await;
    let _zed = app.register_named("zed", "Zed", "Zulu").await;
    app.befriend(&me, &mary).await;
    send(&app, &me, jo.id).await;
    send(&app, &jorg, me.id).await;

    let found = app.get("/api/contact/find-friend/?query=JO", Some(&me.access)).await;
    assert_eq!(found.status, StatusCode::OK);
    let rows = found.body.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["jo_smith", "mary"], "username prefix first, then first-name, then last-name matches");
    assert_eq!(rows[0]["relation"], "request_sent");
    assert_eq!(rows[1]["relation"], "friend");
    assert_no_email(&found.body);

    let unicode = app.get("/api/contact/find-friend/?query=j%C3%96", Some(&me.access)).await;
    assert_eq!(unicode.body[0]["username"], "xander", "Unicode names match ignoring case");
    assert_eq!(unicode.body[0]["relation"], "request_received");
    assert_eq!(usernames(&app, &me, "query=wei%C3%9F").await, ["xander"]);
    assert_eq!(usernames(&app, &me, "query=Zed%40example.com").await, ["zed"], "exact email, any case");
    assert!(usernames(&app, &me, "query=zed%40example.co").await.is_empty(), "no partial email matches");
    assert!(usernames(&app, &me, "query=example.com").await.is_empty());
    assert_eq!(usernames(&app, &me, "query=z").await, ["zed"]);
    let none = app.get("/api/contact/find-friend/?query=zed", Some(&me.access)).await;
    assert_eq!(none.body[0]["relation"], "none");
}

async fn search_hides_the_caller_and_both_sides_of_a_block_and_pages(backend: Backend) {
    let app = spawn_app!(backend);
    let me = app.register("pat_me").await;
    let mut others = Vec::new();
    for i in 0..7 {
        others.push(app.register(&format!("pat_{i}")).await);
    }
    app.post("/api/contact/block-user/", json!({"block_user_id": others[1].id}), Some(&me.access)).await;
    app.post("/api/contact/block-user/", json!({"block_user_id": me.id}), Some(&others[2].access)).await;

    let all = usernames(&app, &me, "query=pat").await;
    assert_eq!(all, ["pat_0", "pat_3", "pat_4", "pat_5", "pat_6"], "not me, not whom I blocked, not who blocked me");
    assert_eq!(usernames(&app, &me, "query=pat&limit=2").await, ["pat_0", "pat_3"]);
    assert_eq!(usernames(&app, &me, "query=pat&limit=2&offset=2").await, ["pat_4", "pat_5"]);
    assert_eq!(usernames(&app, &me, "query=pat&limit=2&offset=4").await, ["pat_6"]);
    assert!(usernames(&app, &others[2], "query=pat_me").await.is_empty(), "the blocker does not see me either");
    assert!(usernames(&app, &me, "query=pat_1%40example.com").await.is_empty(), "nor by email");
}

async fn search_validates_its_parameters(backend: Backend) {
    let app = spawn_app!(backend);
    let me = app.register("ann").await;
    for query in [
        "query=",
        "query=%20%20",
        "query=a%00b",
        "query=a&limit=0",
        "query=a&limit=51",
        "query=a&offset=-1",
        "query=a&offset=1001",
        "limit=5",
        "query=a&limit=x",
    ] {
        let answer = app.get(&format!("/api/contact/find-friend/?{query}"), Some(&me.access)).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "validation_error"), "{query}");
    }
    let long = "a".repeat(101);
    assert_eq!(app.get(&format!("/api/contact/find-friend/?query={long}"), Some(&me.access)).await.status, StatusCode::BAD_REQUEST);
}

async fn the_find_friend_post_sends_a_request(backend: Backend) {
    let app = spawn_app!(backend);
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let sent = app.post("/api/contact/find-friend/?query=bo", json!({"receiver_id": bob.id}), Some(&ann.access)).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "pending");
    let found = app.get("/api/contact/find-friend/?query=bo", Some(&ann.access)).await;
    assert_eq!(found.body[0]["relation"], "request_sent");
}
