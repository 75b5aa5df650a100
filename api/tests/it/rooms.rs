//! Rooms and messages over REST against the real server, on SQLite and PostgreSQL: private and
//! group rooms, history pages, unread counts and read receipts, idempotent sends, and the room
//! event log.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, TestUser};
use crate::{on_both_backends, spawn_app};

on_both_backends!(
    a_private_room_is_one_per_pair_of_friends_and_not_across_a_block,
    groups_are_created_with_friends_take_invites_and_can_be_left,
    history_pages_follow_the_contract_exactly,
    unread_counts_skip_own_messages_and_reset_with_read_receipts,
    a_repeated_client_id_returns_the_stored_message,
    only_members_read_or_write_a_room,
    message_bodies_are_checked,
    the_room_list_is_newest_activity_first_and_events_are_logged,
    an_account_owns_at_most_a_hundred_groups,
    refusals_say_why_in_the_same_words_over_rest_and_websocket,
);

/// Each refusal carries its machine-readable reason, and the one access policy answers REST and
/// WebSocket alike: a block is `blocked` for sends and typing, a stranger `not_member`, a
/// non-friend `not_friends`.
async fn refusals_say_why_in_the_same_words_over_rest_and_websocket(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let cat = app.register("cat").await;
    let room = app.private_room(ann, bob).await;

    let not_friends = app.post("/api/contact/chat-room/private/", json!({"user2_id": cat.id}), Some(&ann.access)).await;
    assert_eq!((not_friends.status, not_friends.body["error"]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("not_friends")));
    let stranger = app.get(&format!("/api/contact/chat-room/message/{room}/"), Some(&cat.access)).await;
    assert_eq!((stranger.status, stranger.body["error"]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("not_member")));
    let missing = app.get("/api/contact/chat-room/message/99999/", Some(&cat.access)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body["error"].get("reason").is_none(), "only refusals carry a reason: {:?}", missing.body);

    app.post("/api/contact/block-user/", json!({"block_user_id": ann.id}), Some(&bob.access)).await;
    let rest =
        app.post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": "hi", "client_id": "r1"}), Some(&ann.access)).await;
    assert_eq!(
        (rest.status, rest.body["error"]["code"].as_str(), rest.body["error"]["reason"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"), Some("blocked"))
    );

    let mut socket = app.ws_ready(&ann.access).await;
    socket.send(json!({"type": "send", "room_id": room, "client_id": "w1", "body": "hi"})).await;
    let sent = socket.next_of("error").await;
    assert_eq!(
        (sent["code"].as_str(), sent["reason"].as_str(), sent["client_id"].as_str()),
        (Some("forbidden"), Some("blocked"), Some("w1"))
    );
    socket.send(json!({"type": "typing", "room_id": room})).await;
    let typing = socket.next_of("error").await;
    assert_eq!((typing["code"].as_str(), typing["reason"].as_str()), (Some("forbidden"), Some("blocked")));
    let mut stranger_socket = app.ws_ready(&cat.access).await;
    stranger_socket.send(json!({"type": "sync", "cursors": {room.to_string(): 0}})).await;
    let refused = stranger_socket.next_of("error").await;
    assert_eq!((refused["code"].as_str(), refused["reason"].as_str()), (Some("forbidden"), Some("not_member")));
}

async fn an_account_owns_at_most_a_hundred_groups(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let mut first = None;
    for i in 0..100 {
        let created =
            app.post("/api/contact/chat-room/group/", json!({"name": format!("g{i}"), "member_ids": [bob.id]}), Some(&ann.access)).await;
        assert_eq!(created.status, StatusCode::CREATED, "group {i}: {:?}", created.body);
        first.get_or_insert(created.body["id"].as_i64().unwrap());
    }
    let refused = app.post("/api/contact/chat-room/group/", json!({"name": "one more", "member_ids": [bob.id]}), Some(&ann.access)).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "conflict"), "{:?}", refused.body);
    // Others are not limited by ann's groups.
    let by_bob = app.post("/api/contact/chat-room/group/", json!({"name": "bob's", "member_ids": [ann.id]}), Some(&bob.access)).await;
    assert_eq!(by_bob.status, StatusCode::CREATED);
    // Leaving one (ownership passes to bob) makes room for another.
    let left = app.post(&format!("/api/contact/chat-room/group/{}/leave/", first.unwrap()), json!({}), Some(&ann.access)).await;
    assert!(left.status.is_success(), "{:?}", left.body);
    let again = app.post("/api/contact/chat-room/group/", json!({"name": "again", "member_ids": [bob.id]}), Some(&ann.access)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
}

async fn a_private_room_is_one_per_pair_of_friends_and_not_across_a_block(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let cat = app.register("cat").await;

    let first = app.post("/api/contact/chat-room/private/", json!({"user2_id": bob.id}), Some(&ann.access)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["kind"], "private");
    assert_eq!(first.body["name"], "bob", "a private room is named after the other member");
    assert_eq!(first.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["unread_count"], 0);
    assert!(first.body["last_message"].is_null());
    let again = app.post("/api/contact/chat-room/private/", json!({"user2_id": ann.id}), Some(&bob.access)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["id"], first.body["id"], "one room per pair, whoever opens it");
    assert_eq!(again.body["name"], "ann");

    let stranger = app.post("/api/contact/chat-room/private/", json!({"user2_id": cat.id}), Some(&ann.access)).await;
    assert_eq!((stranger.status, stranger.code()), (StatusCode::FORBIDDEN, "forbidden"), "friends only");
    let me = app.post("/api/contact/chat-room/private/", json!({"user2_id": ann.id}), Some(&ann.access)).await;
    assert_eq!(me.status, StatusCode::BAD_REQUEST);
    let nobody = app.post("/api/contact/chat-room/private/", json!({"user2_id": 99999}), Some(&ann.access)).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    let room = first.body["id"].as_i64().unwrap();
    app.say(ann, room, "hello", "c1").await;
    app.post("/api/contact/block-user/", json!({"block_user_id": ann.id}), Some(&bob.access)).await;
    let blocked = app
        .post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": "still there?", "client_id": "c2"}), Some(&ann.access))
        .await;
    assert_eq!((blocked.status, blocked.code()), (StatusCode::FORBIDDEN, "forbidden"), "no messages across a block");
    let blocker =
        app.post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": "bye", "client_id": "c3"}), Some(&bob.access)).await;
    assert_eq!(blocker.status, StatusCode::FORBIDDEN, "in either direction");
    let reopen = app.post("/api/contact/chat-room/private/", json!({"user2_id": bob.id}), Some(&ann.access)).await;
    assert_eq!(reopen.status, StatusCode::FORBIDDEN);
    let history = app.get(&format!("/api/contact/chat-room/message/{room}/"), Some(&ann.access)).await;
    assert_eq!(history.body["messages"].as_array().unwrap().len(), 1, "history stays readable");
}

async fn groups_are_created_with_friends_take_invites_and_can_be_left(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat", "dan"]).await;
    let (ann, bob, cat, dan) = (&users[0], &users[1], &users[2], &users[3]);
    let eve = app.register("eve").await;

    let created = app
        .post("/api/contact/chat-room/group/", json!({"name": "  Team ", "member_ids": [bob.id, bob.id, ann.id]}), Some(&ann.access))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["kind"], "group");
    assert_eq!(created.body["name"], "Team");
    assert_eq!(created.body["owner_id"], ann.id);
    let names: Vec<&str> = created.body["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["ann", "bob"], "duplicates and the owner are not added twice");
    let group = created.body["id"].as_i64().unwrap();

    let with_stranger = app.post("/api/contact/chat-room/group/", json!({"name": "x", "member_ids": [eve.id]}), Some(&ann.access)).await;
    assert_eq!(with_stranger.status, StatusCode::FORBIDDEN, "only friends are added");
    let blank = app.post("/api/contact/chat-room/group/", json!({"name": "   "}), Some(&ann.access)).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    let long = app.post("/api/contact/chat-room/group/", json!({"name": "x".repeat(101)}), Some(&ann.access)).await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);

    let invited = app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": cat.id}), Some(&bob.access)).await;
    assert_eq!(invited.status, StatusCode::OK, "any member invites: {:?}", invited.body);
    assert_eq!(invited.body["members"].as_array().unwrap().len(), 3);
    let twice = app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": cat.id}), Some(&ann.access)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let outsider = app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": ann.id}), Some(&dan.access)).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "non-members cannot invite");
    let not_friend =
        app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": eve.id}), Some(&ann.access)).await;
    assert_eq!(not_friend.status, StatusCode::FORBIDDEN);
    app.post("/api/contact/block-user/", json!({"block_user_id": ann.id}), Some(&dan.access)).await;
    let blocked = app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": dan.id}), Some(&ann.access)).await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "blocks are respected");
    let missing = app.post("/api/contact/chat-room/group/invite/", json!({"group_id": 4242, "user_id": cat.id}), Some(&ann.access)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let left = app.post(&format!("/api/contact/chat-room/group/{group}/leave/"), json!({}), Some(&ann.access)).await;
    assert_eq!((left.status, &left.body), (StatusCode::OK, &json!({})));
    let rooms = app.get("/api/contact/chat-rooms/", Some(&bob.access)).await;
    assert_eq!(rooms.body[0]["owner_id"], bob.id, "the longest-standing member inherits the group");
    assert_eq!(rooms.body[0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/contact/chat-rooms/", Some(&ann.access)).await.body, json!([]));
    let gone = app.get(&format!("/api/contact/chat-room/message/{group}/"), Some(&ann.access)).await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN, "a former member reads no more");
    let again = app.post(&format!("/api/contact/chat-room/group/{group}/leave/"), json!({}), Some(&ann.access)).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);

    let private = app.private_room(bob, cat).await;
    let no_leaving = app.post(&format!("/api/contact/chat-room/group/{private}/leave/"), json!({}), Some(&bob.access)).await;
    assert_eq!(no_leaving.status, StatusCode::CONFLICT);
}

async fn history_pages_follow_the_contract_exactly(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    for i in 1..=25 {
        let sender = if i % 2 == 0 { ann } else { bob };
        app.say(sender, room, &format!("message {i}"), &format!("c{i}")).await;
    }
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let answer = app.get(&format!("/api/contact/chat-room/message/{room}/{query}"), Some(&ann.access)).await;
            assert_eq!(answer.status, StatusCode::OK, "{query}: {:?}", answer.body);
            let seqs: Vec<i64> = answer.body["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
            (seqs, answer.body["has_more"].as_bool().unwrap())
        }
    };
    assert_eq!(page("?limit=10").await, ((16..=25).collect(), true), "newest page, oldest first");
    assert_eq!(page("?before=16&limit=10").await, ((6..=15).collect(), true));
    assert_eq!(page("?before=6&limit=10").await, ((1..=5).collect(), false));
    assert_eq!(page("?after=0&limit=10").await, ((1..=10).collect(), true));
    assert_eq!(page("?after=20&limit=10").await, ((21..=25).collect(), false));
    assert_eq!(page("?after=25").await, (vec![], false));
    assert_eq!(page("").await, ((1..=25).collect(), false), "default limit 50");

    let full = app.get(&format!("/api/contact/chat-room/message/{room}/?after=24"), Some(&bob.access)).await;
    let message = &full.body["messages"][0];
    assert_eq!(message["body"], "message 25");
    assert_eq!(message["room_id"], room);
    assert_eq!(message["sender"]["username"], "bob");
    assert_eq!(message["client_id"], "c25");
    assert_eq!(message["deleted"], false);
    assert!(message["edited_at"].is_null());
    assert!(message["sender"].get("email").is_none());

    for bad in ["?before=5&after=1", "?limit=0", "?limit=201", "?after=-1", "?limit=abc"] {
        let answer = app.get(&format!("/api/contact/chat-room/message/{room}/{bad}"), Some(&ann.access)).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "validation_error"), "{bad}");
    }
}

async fn unread_counts_skip_own_messages_and_reset_with_read_receipts(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let group = app.group(ann, "trio", &[bob, cat]).await;
    for i in 1..=3 {
        app.say(ann, group, &format!("from ann {i}"), &format!("a{i}")).await;
    }
    app.say(bob, group, "from bob", "b1").await;
    let unread = |user: &TestUser| {
        let app = &app;
        let token = user.access.clone();
        async move { app.get("/api/contact/chat-rooms/", Some(&token)).await.body[0]["unread_count"].as_i64().unwrap() }
    };
    assert_eq!(unread(ann).await, 1, "own messages never count");
    assert_eq!(unread(bob).await, 3);
    assert_eq!(unread(cat).await, 4);

    let read = app.post(&format!("/api/contact/chat-room/{group}/read/"), json!({"seq": 2}), Some(&cat.access)).await;
    assert_eq!((read.status, &read.body), (StatusCode::OK, &json!({})));
    assert_eq!(unread(cat).await, 2);
    app.post(&format!("/api/contact/chat-room/{group}/read/"), json!({"seq": 1}), Some(&cat.access)).await;
    assert_eq!(unread(cat).await, 2, "a receipt never moves back");
    let rooms = app.get("/api/contact/chat-rooms/", Some(&cat.access)).await;
    assert_eq!(rooms.body[0]["last_read_seq"], 2);
    assert_eq!(rooms.body[0]["last_message"]["body"], "from bob");
    app.post(&format!("/api/contact/chat-room/{group}/read/"), json!({"seq": 4}), Some(&cat.access)).await;
    assert_eq!(unread(cat).await, 0);

    let beyond = app.post(&format!("/api/contact/chat-room/{group}/read/"), json!({"seq": 5}), Some(&cat.access)).await;
    assert_eq!((beyond.status, beyond.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    let stranger = app.register("dan").await;
    let outsider = app.post(&format!("/api/contact/chat-room/{group}/read/"), json!({"seq": 1}), Some(&stranger.access)).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
}

async fn a_repeated_client_id_returns_the_stored_message(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    let first = app.say(ann, room, "once", "same-id").await;
    let retry = app.say(ann, room, "once (retried)", "same-id").await;
    assert_eq!(retry["id"], first["id"], "the retry returns the stored message");
    assert_eq!(retry["body"], "once");
    let other_sender = app.say(bob, room, "mine", "same-id").await;
    assert_ne!(other_sender["id"], first["id"], "client ids are per sender");
    assert_eq!(app.all_seqs(ann, room).await, [1, 2]);

    let generated = app.post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": "no id"}), Some(&ann.access)).await;
    assert_eq!(generated.status, StatusCode::CREATED);
    assert!(generated.body["client_id"].as_str().unwrap().starts_with("http-"));
}

async fn only_members_read_or_write_a_room(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let cat = app.register("cat").await;
    let write =
        app.post(&format!("/api/contact/chat-room/message/{room}/"), json!({"body": "hi", "client_id": "x"}), Some(&cat.access)).await;
    assert_eq!((write.status, write.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let read = app.get(&format!("/api/contact/chat-room/message/{room}/"), Some(&cat.access)).await;
    assert_eq!((read.status, read.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let missing = app.get("/api/contact/chat-room/message/98765/", Some(&cat.access)).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    let missing_write = app.post("/api/contact/chat-room/message/98765/", json!({"body": "hi", "client_id": "x"}), Some(&cat.access)).await;
    assert_eq!(missing_write.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/contact/chat-room/message/{room}/"), None).await.status, StatusCode::UNAUTHORIZED);
}

async fn message_bodies_are_checked(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let path = format!("/api/contact/chat-room/message/{room}/");
    let token = Some(users[0].access.as_str());
    let empty = app.post(&path, json!({"body": "", "client_id": "a"}), token).await;
    assert_eq!((empty.status, empty.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    let blank = app.post(&path, json!({"body": " \n ", "client_id": "b"}), token).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    let long = app.post(&path, json!({"body": "é".repeat(4001), "client_id": "c"}), token).await;
    assert_eq!((long.status, long.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let longest = app.post(&path, json!({"body": "é".repeat(4000), "client_id": "d"}), token).await;
    assert_eq!(longest.status, StatusCode::CREATED, "4,000 characters (8,000 bytes) is allowed");
    let bad_id = app.post(&path, json!({"body": "x", "client_id": "y".repeat(65)}), token).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.all_seqs(&users[0], room).await, [1], "nothing rejected was stored");
}

async fn the_room_list_is_newest_activity_first_and_events_are_logged(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let first = app.private_room(ann, bob).await;
    let second = app.group(ann, "second", &[bob]).await;
    let third = app.private_room(ann, cat).await;
    let order = |user: &TestUser| {
        let app = &app;
        let token = user.access.clone();
        async move {
            let list = app.get("/api/contact/chat-rooms/", Some(&token)).await;
            list.body.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>()
        }
    };
    assert_eq!(order(ann).await, [third, second, first]);
    app.say(bob, first, "bump", "b").await;
    assert_eq!(order(ann).await, [first, third, second], "a new message moves its room to the top");
    app.say(ann, third, "bump", "t").await;
    assert_eq!(app.say(bob, first, "bump (retried)", "b").await["body"], "bump");
    assert_eq!(order(ann).await, [third, first, second], "a retried send is not new activity");
    app.post("/api/contact/chat-room/group/invite/", json!({"group_id": second, "user_id": cat.id}), Some(&ann.access)).await;
    app.post(&format!("/api/contact/chat-room/group/{second}/leave/"), json!({}), Some(&bob.access)).await;

    use diesel::{Connection, QueryableByName, RunQueryDsl, sql_types::Text};
    #[derive(QueryableByName)]
    struct Kind {
        #[diesel(sql_type = Text)]
        kind: String,
    }
    let query = format!("SELECT kind FROM room_events WHERE room_id = {second} ORDER BY id");
    let url = app.database_url.clone();
    let kinds: Vec<String> = tokio::task::spawn_blocking(move || match url.strip_prefix("sqlite://") {
        Some(path) => diesel::sql_query(&query).load::<Kind>(&mut diesel::SqliteConnection::establish(path).unwrap()),
        None => diesel::sql_query(&query).load::<Kind>(&mut diesel::PgConnection::establish(&url).unwrap()),
    })
    .await
    .unwrap()
    .unwrap()
    .into_iter()
    .map(|k| k.kind)
    .collect();
    assert_eq!(kinds, ["created", "member_added", "member_added", "member_added", "member_left"]);
}
