//! Real-time delivery with real WebSocket clients against the real server, on SQLite and
//! PostgreSQL: fan-out, ordering under concurrent senders, idempotent retries, sync after a
//! reconnect, typing, presence, room events, bad frames, slow and dead connections, the
//! Channels-compatible endpoint, and a crash in the middle of a burst.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::Backend;
use crate::common::ws::Ending;
use crate::{on_both_backends, spawn_app};

on_both_backends!(
    a_message_reaches_every_member_and_the_senders_other_devices,
    everything_stored_after_the_upgrade_reaches_a_connection_that_has_sent_nothing,
    concurrent_senders_produce_one_gapless_order_seen_by_everyone,
    a_resent_client_id_is_acknowledged_with_the_stored_message,
    sync_after_a_reconnect_returns_everything_missed,
    typing_and_read_receipts_reach_the_room,
    presence_follows_the_first_and_last_connection,
    a_user_added_to_a_room_gets_it_and_its_messages_at_once,
    bad_frames_get_errors_and_the_connection_stays_open,
    upgrades_require_a_valid_token_and_an_allowed_origin,
    non_members_and_blocked_users_are_refused_over_the_socket,
    the_channels_endpoint_speaks_the_django_channels_shape,
    logout_closes_the_sessions_sockets,
    a_slow_reader_is_disconnected_and_the_room_carries_on,
    a_silent_connection_is_dropped_by_the_heartbeat,
    every_acknowledged_message_survives_a_crash_exactly_once,
    shutdown_closes_sockets_with_1012_and_keeps_every_acknowledged_message,
    shutdown_answers_every_message_it_stored_before_closing_the_sockets,
    a_late_sync_still_brings_what_the_connection_missed_below_the_live_messages,
    a_frame_fuzzer_leaves_the_server_healthy_and_every_ack_stored,
);

fn send(room: i64, client_id: &str, body: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": client_id, "body": body})
}

async fn a_message_reaches_every_member_and_the_senders_other_devices(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let group = app.group(ann, "trio", &[bob, cat]).await;
    let mut ann_phone = app.ws_ready(&ann.access).await;
    let mut ann_laptop = app.ws_ready(&ann.access).await;
    let mut bob_ws = app.ws_ready(&bob.access).await;
    let mut cat_ws = app.ws_ready(&cat.access).await;

    ann_phone.send(send(group, "c-1", "hello all")).await;
    let ack = ann_phone.next_of("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_eq!(ack["message"]["seq"], 1);
    assert_eq!(ack["message"]["body"], "hello all");
    assert_eq!(ack["message"]["sender"]["id"], ann.id);
    assert_eq!(ack["message"]["sender"]["online"], true);
    for socket in [&mut ann_laptop, &mut bob_ws, &mut cat_ws] {
        let frame = socket.next_of("message").await;
        assert_eq!(frame["message"]["id"], ack["message"]["id"]);
        assert_eq!(frame["message"]["room_id"], group);
    }
    assert!(ann_phone.collect_of("message", Duration::from_millis(300)).await.is_empty(), "the sending connection gets the ack only");

    let rest = app.say(bob, group, "over REST", "r-1").await;
    assert_eq!(rest["seq"], 2);
    for socket in [&mut ann_phone, &mut ann_laptop, &mut bob_ws, &mut cat_ws] {
        assert_eq!(socket.next_of("message").await["message"]["body"], "over REST", "REST sends fan out too");
    }
}

/// The upgrade is answered once the connection is registered: a message stored right after
/// the handshake reaches it, though the client has not sent a frame yet (and its first, a sync
/// naming no room, asks for no catch-up).
async fn everything_stored_after_the_upgrade_reaches_a_connection_that_has_sent_nothing(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    let mut ann_ws = app.ws_ready(&ann.access).await;
    for round in 0..20 {
        let mut bob_ws = app.ws(&bob.access).await;
        ann_ws.send(send(room, &format!("c-{round}"), "right after the handshake")).await;
        let ack = ann_ws.next_of("ack").await;
        bob_ws.send(json!({"type": "sync", "cursors": {}})).await;
        let message = bob_ws.next_of("message").await;
        assert_eq!(message["message"]["id"], ack["message"]["id"], "round {round}");
    }
}

async fn concurrent_senders_produce_one_gapless_order_seen_by_everyone(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let group = app.group(&users[0], "busy", &[&users[1], &users[2]]).await;
    let mut sockets = Vec::new();
    for user in &users {
        sockets.push(app.ws_ready(&user.access).await);
    }
    let mut watcher = app.ws_ready(&users[2].access).await;
    const EACH: usize = 40;
    // Every member pipelines its sends without waiting for acks.
    for (index, socket) in sockets.iter_mut().enumerate() {
        for n in 0..EACH {
            socket.send(send(group, &format!("u{index}-{n}"), &format!("{index}:{n}"))).await;
        }
    }
    let total = EACH * users.len();
    let mut acked = HashSet::new();
    for socket in sockets.iter_mut() {
        let mut seqs = Vec::new();
        while seqs.len() < total {
            let frame = socket.next().await;
            match frame["type"].as_str().unwrap() {
                "ack" => {
                    acked.insert(frame["client_id"].as_str().unwrap().to_owned());
                    seqs.push(frame["message"]["seq"].as_i64().unwrap());
                }
                "message" => seqs.push(frame["message"]["seq"].as_i64().unwrap()),
                "presence" => {}
                other => panic!("unexpected frame {other}: {frame}"),
            }
        }
        assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "every connection sees seq 1..{total} in order");
    }
    assert_eq!(acked.len(), total, "every send was acknowledged once");
    let watched: Vec<i64> = watcher.take_of("message", total).await.iter().map(|f| f["message"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(watched, (1..=total as i64).collect::<Vec<_>>());
    assert_eq!(app.all_seqs(&users[0], group).await, (1..=total as i64).collect::<Vec<_>>(), "history has no gaps");
    // Per sender, the order of its own sends is kept.
    let history = app.get(&format!("/api/contact/chat-room/message/{group}/?limit=200"), Some(&users[0].access)).await;
    for (index, user) in users.iter().enumerate() {
        let own: Vec<String> = history.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender"]["id"] == user.id)
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(own, (0..EACH).map(|n| format!("{index}:{n}")).collect::<Vec<_>>());
    }
}

async fn a_resent_client_id_is_acknowledged_with_the_stored_message(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ann = app.ws_ready(&users[0].access).await;
    let mut bob = app.ws_ready(&users[1].access).await;
    ann.send(send(room, "dup", "first")).await;
    ann.send(send(room, "dup", "first, retried in the same batch")).await;
    let first = ann.next_of("ack").await;
    let second = ann.next_of("ack").await;
    assert_eq!(first["message"]["id"], second["message"]["id"]);
    ann.send(send(room, "dup", "first, retried later")).await;
    let third = ann.next_of("ack").await;
    assert_eq!(third["message"]["id"], first["message"]["id"]);
    assert_eq!(third["message"]["body"], "first");
    assert_eq!(bob.collect_of("message", Duration::from_millis(500)).await.len(), 1, "delivered once");
    let rest = app.say(&users[0], room, "again over REST", "dup").await;
    assert_eq!(rest["id"], first["message"]["id"], "REST and WebSocket share idempotency");
    assert_eq!(app.all_seqs(&users[0], room).await, [1]);
}

async fn sync_after_a_reconnect_returns_everything_missed(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let private = app.private_room(ann, bob).await;
    let group = app.group(ann, "g", &[bob, cat]).await;
    app.say(ann, private, "before", "p0").await;
    let mut bob_ws = app.ws_ready(&bob.access).await;
    drop(bob_ws);
    for i in 1..=5 {
        app.say(ann, private, &format!("missed {i}"), &format!("p{i}")).await;
    }
    app.say(cat, group, "group missed", "g1").await;

    // A message arrives live while bob reconnects, before his sync: it must not overtake
    // what he missed, nor come twice.
    bob_ws = app.ws(&bob.access).await;
    app.say(ann, private, "live during reconnect", "p6").await;
    bob_ws.send(json!({"type": "sync", "cursors": {private.to_string(): 1, group.to_string(): 0}})).await;
    let mut got: HashMap<i64, Vec<i64>> = HashMap::new();
    let synced = loop {
        let frame = bob_ws.next().await;
        match frame["type"].as_str().unwrap() {
            "message" => {
                got.entry(frame["message"]["room_id"].as_i64().unwrap()).or_default().push(frame["message"]["seq"].as_i64().unwrap())
            }
            "synced" => break frame,
            _ => {}
        }
    };
    assert_eq!(got[&private], [2, 3, 4, 5, 6, 7], "everything after the cursor, in order");
    assert_eq!(got[&group], [1]);
    assert_eq!(synced["cursors"][private.to_string()], 7);
    assert_eq!(synced["cursors"][group.to_string()], 1);
    assert_eq!(synced["has_more"], json!([]));
    assert!(bob_ws.collect_of("message", Duration::from_millis(300)).await.is_empty(), "the live copy of seq 7 is not sent again");

    app.say(ann, private, "live again", "p8").await;
    assert_eq!(bob_ws.next_of("message").await["message"]["seq"], 8, "live delivery resumes after sync");

    let stranger = app.register("dan").await;
    let mut dan = app.ws_ready(&stranger.access).await;
    dan.send(json!({"type": "sync", "cursors": {private.to_string(): 0}})).await;
    assert_eq!(dan.next_of("error").await["code"], "forbidden");
    assert_eq!(dan.next_of("synced").await["cursors"], json!({}), "nothing of a foreign room");
}

async fn typing_and_read_receipts_reach_the_room(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let group = app.group(&users[0], "g", &[&users[1], &users[2]]).await;
    let mut ann = app.ws_ready(&users[0].access).await;
    let mut ann_second = app.ws_ready(&users[0].access).await;
    let mut bob = app.ws_ready(&users[1].access).await;
    ann.send(json!({"type": "typing", "room_id": group})).await;
    let typing = bob.next_of("typing").await;
    assert_eq!(typing, json!({"type": "typing", "room_id": group, "user_id": users[0].id}));
    assert!(ann_second.collect_of("typing", Duration::from_millis(300)).await.is_empty(), "the typist is not told");
    ann.send(json!({"type": "typing", "room_id": group})).await;
    assert!(bob.collect_of("typing", Duration::from_millis(300)).await.is_empty(), "typing is throttled to one a second per room");

    app.say(&users[0], group, "one", "1").await;
    app.say(&users[0], group, "two", "2").await;
    bob.send(json!({"type": "read", "room_id": group, "seq": 2})).await;
    let receipt = ann.next_of("read").await;
    assert_eq!(receipt, json!({"type": "read", "room_id": group, "user_id": users[1].id, "seq": 2}));
    let rooms = app.get("/api/contact/chat-rooms/", Some(&users[1].access)).await;
    assert_eq!(rooms.body[0]["unread_count"], 0, "the read frame is stored");
    bob.send(json!({"type": "read", "room_id": group, "seq": 99})).await;
    assert_eq!(bob.next_of("error").await["code"], "validation_error");
    let outsider = app.register("dan").await;
    let mut dan = app.ws_ready(&outsider.access).await;
    dan.send(json!({"type": "typing", "room_id": group})).await;
    assert_eq!(dan.next_of("error").await["code"], "forbidden");
}

async fn presence_follows_the_first_and_last_connection(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let mut ann_ws = app.ws_ready(&ann.access).await;
    let bob_one = app.ws_ready(&bob.access).await;
    assert_eq!(ann_ws.next_of("presence").await, json!({"type": "presence", "user_id": bob.id, "online": true}));
    let friends_list = app.get("/api/contact/friends/", Some(&ann.access)).await;
    assert_eq!(friends_list.body[0]["online"], true);
    // Not ws_ready: its wait for a pong would skip the presence frame this checks.
    let mut bob_two = app.ws(&bob.access).await;
    assert_eq!(bob_two.next_of("presence").await["user_id"], ann.id, "a new connection learns who is online");
    drop(bob_one);
    assert!(ann_ws.collect_of("presence", Duration::from_millis(500)).await.is_empty(), "still online on another connection");
    drop(bob_two);
    assert_eq!(ann_ws.next_of("presence").await, json!({"type": "presence", "user_id": bob.id, "online": false}));
    assert_eq!(app.get("/api/contact/friends/", Some(&ann.access)).await.body[0]["online"], false);

    let cat = app.register("cat").await;
    let _cat_ws = app.ws_ready(&cat.access).await;
    assert!(ann_ws.collect_of("presence", Duration::from_millis(300)).await.is_empty(), "presence goes to friends only");
    app.befriend(ann, &cat).await;
    assert_eq!(ann_ws.next_of("presence").await["user_id"], cat.id, "a new friend who is online shows up at once");
    app.delete(&format!("/api/contact/friends/{}/", cat.id), Some(&ann.access)).await;
    assert_eq!(
        ann_ws.next_of("presence").await,
        json!({"type": "presence", "user_id": cat.id, "online": false}),
        "an ex-friend stops showing as online"
    );
}

async fn a_user_added_to_a_room_gets_it_and_its_messages_at_once(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let mut bob_ws = app.ws_ready(&bob.access).await;
    let mut cat_ws = app.ws_ready(&cat.access).await;
    let group = app.group(ann, "new", &[bob]).await;
    let event = bob_ws.next_of("room").await;
    assert_eq!(event["room"]["id"], group);
    assert_eq!(event["room"]["name"], "new");
    app.say(ann, group, "welcome", "w").await;
    assert_eq!(bob_ws.next_of("message").await["message"]["body"], "welcome");

    app.post("/api/contact/chat-room/group/invite/", json!({"group_id": group, "user_id": cat.id}), Some(&bob.access)).await;
    let added = cat_ws.next_of("room").await;
    assert_eq!(added["room"]["members"].as_array().unwrap().len(), 3);
    assert_eq!(added["room"]["unread_count"], 0, "earlier history is there to read, not counted as unread");
    assert_eq!(added["room"]["last_message"]["body"], "welcome");
    assert_eq!(bob_ws.next_of("room").await["room"]["members"].as_array().unwrap().len(), 3, "members see the change");
    app.say(ann, group, "hi cat", "w2").await;
    assert_eq!(cat_ws.next_of("message").await["message"]["body"], "hi cat", "the open connection gets the new room's messages");
    assert_eq!(bob_ws.next_of("message").await["message"]["body"], "hi cat");

    let private = app.private_room(bob, cat).await;
    assert_eq!(cat_ws.next_of("room").await["room"]["id"], private);
    app.post(&format!("/api/contact/chat-room/group/{group}/leave/"), json!({}), Some(&cat.access)).await;
    assert_eq!(cat_ws.next_of("room_left").await["room_id"], group);
    app.say(ann, group, "after cat left", "w3").await;
    assert_eq!(bob_ws.next_of("message").await["message"]["body"], "after cat left");
    assert!(cat_ws.collect_of("message", Duration::from_millis(400)).await.is_empty(), "a former member gets nothing");
}

async fn bad_frames_get_errors_and_the_connection_stays_open(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ws = app.ws_ready(&users[0].access).await;
    let bad = [
        "not json".to_owned(),
        r#"{"type":"dance"}"#.to_owned(),
        r#"{"no":"type"}"#.to_owned(),
        "[1,2,3]".to_owned(),
        json!({"type": "send", "client_id": "m1", "body": "no room"}).to_string(),
        json!({"type": "send", "room_id": "one", "client_id": "m2", "body": "x"}).to_string(),
        json!({"type": "sync", "cursors": {"abc": 1}}).to_string(),
    ];
    for frame in &bad {
        ws.send_raw(Message::text(frame.clone())).await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], "validation_error", "{frame} -> {error}");
    }
    ws.send(json!({"type": "send", "client_id": "m1", "body": "no room"})).await;
    assert_eq!(ws.next_of("error").await["client_id"], "m1", "the error names the send it answers");
    ws.send(send(room, "empty", "")).await;
    let empty = ws.next_of("error").await;
    assert_eq!((empty["code"].as_str(), empty["client_id"].as_str()), (Some("validation_error"), Some("empty")));
    ws.send(send(room, "long", &"x".repeat(4001))).await;
    assert_eq!(ws.next_of("error").await["code"], "payload_too_large");
    ws.send(send(room, "nul", "a\u{0}b")).await;
    assert_eq!(ws.next_of("error").await["client_id"], "nul", "control characters are refused before storage");
    ws.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(ws.next_of("error").await["code"], "validation_error");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await, json!({"type": "pong"}), "the connection is still open");
    ws.send(send(room, "fine", "still works")).await;
    assert_eq!(ws.next_of("ack").await["message"]["seq"], 1);

    ws.send_raw(Message::text("x".repeat(70 * 1024))).await;
    let (_, ending) = ws.read_to_end(Duration::from_secs(5)).await;
    match ending {
        Ending::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1009, "oversized frames close with 1009"),
        other => panic!("expected a close frame with 1009, got {other:?}"),
    }
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

async fn upgrades_require_a_valid_token_and_an_allowed_origin(backend: Backend) {
    let app = spawn_app!(backend, &[("CORS_ORIGINS", "http://allowed.test")]);
    let user = app.register("ann").await;
    let refused = |request: tokio_tungstenite::tungstenite::handshake::client::Request| async move {
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => 101,
        }
    };
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let base = app.address.replacen("http://", "ws://", 1);
    assert_eq!(refused(format!("{base}/ws/").into_client_request().unwrap()).await, 401, "no token");
    assert_eq!(refused(format!("{base}/ws/?token=garbage").into_client_request().unwrap()).await, 401);
    assert_eq!(refused(app.ws_url("/ws/", &user.refresh).into_client_request().unwrap()).await, 401, "a refresh token is not enough");
    let with_origin = |origin: &str| {
        let mut request = app.ws_url("/ws/", &user.access).into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        request
    };
    assert_eq!(refused(with_origin("http://evil.test")).await, 403, "a foreign browser origin");
    assert_eq!(refused(with_origin("http://chat.test")).await, 101, "PUBLIC_URL's origin");
    assert_eq!(refused(with_origin("http://allowed.test")).await, 101, "an origin of CORS_ORIGINS");
    assert_eq!(refused(app.ws_url("/ws/", &user.access).into_client_request().unwrap()).await, 101, "no Origin: mobile and server clients");
    let log = app.server_log();
    assert!(!log.contains(&user.access), "the token never reaches the log");
}

async fn non_members_and_blocked_users_are_refused_over_the_socket(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let cat = app.register("cat").await;
    let mut cat_ws = app.ws_ready(&cat.access).await;
    cat_ws.send(send(room, "intrude", "let me in")).await;
    let error = cat_ws.next_of("error").await;
    assert_eq!((error["code"].as_str(), error["client_id"].as_str()), (Some("forbidden"), Some("intrude")));
    cat_ws.send(send(424242, "nowhere", "hello?")).await;
    assert_eq!(cat_ws.next_of("error").await["code"], "not_found");

    let mut ann_ws = app.ws_ready(&users[0].access).await;
    app.post("/api/contact/block-user/", json!({"block_user_id": users[0].id}), Some(&users[1].access)).await;
    ann_ws.send(send(room, "blocked", "are you there")).await;
    assert_eq!(ann_ws.next_of("error").await["code"], "forbidden");
    assert!(app.all_seqs(&users[0], room).await.is_empty());
}

async fn the_channels_endpoint_speaks_the_django_channels_shape(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    let mut ann_channels = app.ws_at(&format!("/ws/chat/{room}/"), &ann.access).await;
    let mut bob_channels = app.ws_at(&format!("/ws/chat/{room}/"), &bob.access).await;
    let mut bob_full = app.ws_ready(&bob.access).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ann_channels.send(json!({"message": "hi from channels"})).await;
    for socket in [&mut ann_channels, &mut bob_channels] {
        let frame = socket.next().await;
        assert_eq!(frame["message"], "hi from channels");
        assert_eq!(frame["sender"]["username"], "ann");
        assert_eq!(frame["room_id"], room);
        assert_eq!(frame["seq"], 1);
        assert!(frame["created_at"].is_string());
        assert!(frame.get("type").is_none(), "the Channels shape has no type");
    }
    assert_eq!(bob_full.next_of("message").await["message"]["body"], "hi from channels", "/ws/ clients see it as a message");
    app.say(bob, room, "from REST", "r").await;
    assert_eq!(ann_channels.next().await["message"], "from REST");

    let cat = app.register("cat").await;
    match tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/chat/{room}/"), &cat.access)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("a non-member must be refused, got {:?}", other.map(|_| ())),
    }
}

async fn logout_closes_the_sessions_sockets(backend: Backend) {
    // Reuse at once, not a retry within the grace: the session is revoked.
    let app = spawn_app!(backend, &[("REFRESH_REUSE_GRACE", "0")]);
    let user = app.register("ann").await;
    let other = app.login(&user.email, &user.password).await;
    let mut this_session = app.ws_ready(&user.access).await;
    let mut other_session = app.ws_ready(other.body["access"].as_str().unwrap()).await;
    app.post("/api/account/logout/", json!({"refresh": user.refresh}), Some(&user.access)).await;
    let (_, ending) = this_session.read_to_end(Duration::from_secs(5)).await;
    match ending {
        Ending::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a policy close, got {other:?}"),
    }
    other_session.send(json!({"type": "ping"})).await;
    assert_eq!(other_session.next_of("pong").await["type"], "pong", "the other login stays connected");

    // Reusing a rotated refresh token (a sign of theft) also closes that session's sockets.
    let other_refresh = other.body["refresh"].as_str().unwrap();
    assert_eq!(app.post("/api/account/token/refresh/", json!({"refresh": other_refresh}), None).await.status, StatusCode::OK);
    assert_eq!(app.post("/api/account/token/refresh/", json!({"refresh": other_refresh}), None).await.status, StatusCode::UNAUTHORIZED);
    let (_, ending) = other_session.read_to_end(Duration::from_secs(5)).await;
    assert!(matches!(ending, Ending::Closed(Some(ref frame)) if u16::from(frame.code) == 1008), "{ending:?}");
}

async fn a_slow_reader_is_disconnected_and_the_room_carries_on(backend: Backend) {
    let app = spawn_app!(backend, &[("WS_INBOX_CAPACITY", "64")]);
    let users = app.friends(&["ann", "bob", "cat"]).await;
    let group = app.group(&users[0], "flood", &[&users[1], &users[2]]).await;
    // bob's socket reads nothing while the room is flooded with 8 KB messages: its TCP buffers
    // fill, then its inbox, and the server lets it go instead of buffering without bound.
    let mut slow = app.ws_ready(&users[1].access).await;
    let mut cat = app.ws_ready(&users[2].access).await;
    let mut ann = app.ws_ready(&users[0].access).await;
    const COUNT: usize = 1500;
    const CHUNK: usize = 10;
    let body = "é".repeat(4000);
    let (mut acks, mut cat_seen) = (0, 0);
    for chunk in 0..COUNT / CHUNK {
        for n in chunk * CHUNK..(chunk + 1) * CHUNK {
            ann.send(send(group, &format!("f{n}"), &body)).await;
        }
        acks += ann.take_of("ack", CHUNK).await.len();
        cat_seen += cat.take_of("message", CHUNK).await.len();
    }
    assert_eq!(acks, COUNT);
    assert_eq!(cat_seen, COUNT, "a reading member gets every message");
    let (read, ending) = slow.read_to_end(Duration::from_secs(20)).await;
    assert!(read < COUNT, "the slow reader was cut off before the end ({read} frames)");
    match ending {
        Ending::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 4000, "closed as too slow"),
        Ending::Closed(None) | Ending::Dropped => {}
    }
    assert_eq!(app.all_seqs(&users[0], group).await.len(), COUNT, "nothing was lost from storage");
    let mut again = app.ws_ready(&users[1].access).await;
    again.send(json!({"type": "sync", "cursors": {group.to_string(): COUNT as i64 - 5}})).await;
    assert_eq!(again.take_of("message", 5).await.len(), 5, "the slow client recovers with sync");
}

async fn a_silent_connection_is_dropped_by_the_heartbeat(backend: Backend) {
    let app = spawn_app!(backend, &[("WS_HEARTBEAT_SECS", "1")]);
    let users = app.friends(&["ann", "bob"]).await;
    let mut ann = app.ws_ready(&users[0].access).await;
    // bob connects and then never reads again, so it never answers the server's pings.
    let silent = app.ws_ready(&users[1].access).await;
    assert_eq!(ann.next_of("presence").await["online"], true);
    let offline = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let frame = ann.next_within(Duration::from_secs(10)).await.expect("ann's connection stays up");
            if frame["type"] == "presence" && frame["online"] == false {
                return frame;
            }
            ann.send(json!({"type": "ping"})).await;
        }
    })
    .await
    .expect("the silent connection was not dropped within 10 s");
    assert_eq!(offline["user_id"], users[1].id);
    drop(silent);
}

/// Sends `ids` through `ws` keeping at most `window` unacknowledged (as a client must: a
/// connection has a cap on sends in flight), calling `on_ack` for each ack; stops early when
/// `stop` says so. Returns the acknowledged client ids.
async fn pipeline(ws: &mut crate::common::WsClient, room: i64, ids: &[String], window: usize, stop_after: usize) -> Vec<String> {
    let mut acked = Vec::new();
    let mut next = 0;
    while acked.len() < ids.len().min(stop_after) {
        while next < ids.len() && next - acked.len() < window {
            ws.send(send(room, &ids[next], &format!("message {}", ids[next]))).await;
            next += 1;
        }
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => acked.push(frame["client_id"].as_str().unwrap().to_owned()),
            Some("error") => panic!("a send failed: {frame}"),
            _ => {}
        }
    }
    acked
}

async fn every_acknowledged_message_survives_a_crash_exactly_once(backend: Backend) {
    let mut app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ws = app.ws_ready(&users[0].access).await;
    const BURST: usize = 600;
    let ids: Vec<String> = (0..BURST).map(|n| format!("burst-{n}")).collect();
    // Kill the server once 150 sends are acknowledged, with up to 200 more in flight.
    let mut acked = pipeline(&mut ws, room, &ids, 200, 150).await;
    app.kill();
    // Acks that were already on the wire count too.
    while let Some(frame) = ws.next_within(Duration::from_millis(300)).await {
        if frame["type"] == "ack" {
            acked.push(frame["client_id"].as_str().unwrap().to_owned());
        }
    }
    app.start_server().await;

    let history = app.all_seqs(&users[0], room).await;
    eprintln!("crash test: {} acknowledged, {} stored of {BURST} when the server was killed", acked.len(), history.len());
    assert_eq!(history, (1..=history.len() as i64).collect::<Vec<_>>(), "seqs stay gapless across the crash");
    let mut stored_ids: Vec<String> = Vec::new();
    let mut after = 0;
    loop {
        let page = app.get(&format!("/api/contact/chat-room/message/{room}/?after={after}&limit=200"), Some(&users[0].access)).await;
        for m in page.body["messages"].as_array().unwrap() {
            stored_ids.push(m["client_id"].as_str().unwrap().to_owned());
            after = m["seq"].as_i64().unwrap();
        }
        if !page.body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let unique: HashSet<&String> = stored_ids.iter().collect();
    assert_eq!(unique.len(), stored_ids.len(), "no message is stored twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged {id} was lost");
    }

    // The client resends everything, with the same client ids: each is stored exactly once.
    let mut ws = app.ws_ready(&users[0].access).await;
    let acks = pipeline(&mut ws, room, &ids, 200, BURST).await;
    assert_eq!(acks.iter().collect::<HashSet<_>>().len(), BURST);
    assert_eq!(app.all_seqs(&users[0], room).await, (1..=BURST as i64).collect::<Vec<_>>(), "exactly once each after the resend");
}

async fn shutdown_closes_sockets_with_1012_and_keeps_every_acknowledged_message(backend: Backend) {
    let mut app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ws = app.ws_ready(&users[0].access).await;
    for n in 0..200 {
        ws.send(send(room, &format!("s{n}"), "before shutdown")).await;
    }
    let status = tokio::task::block_in_place(|| app.terminate());
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}\n{}", app.server_log());
    let log = app.server_log();
    assert!(log.contains("shutting down"), "{log}");
    let (frames, ending) = ws.frames_until_close(Duration::from_secs(5)).await;
    match ending {
        Ending::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1012, "closed as a service restart"),
        other => panic!("expected a close frame with 1012, got {other:?}"),
    }
    let acked: Vec<String> = frames.iter().filter(|f| f["type"] == "ack").map(|f| f["client_id"].as_str().unwrap().to_owned()).collect();
    app.start_server().await;
    let stored: HashSet<String> = {
        let page = app.get(&format!("/api/contact/chat-room/message/{room}/?limit=200"), Some(&users[0].access)).await;
        page.body["messages"].as_array().unwrap().iter().map(|m| m["client_id"].as_str().unwrap().to_owned()).collect()
    };
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} was lost in the shutdown");
    }
    assert_eq!(app.all_seqs(&users[0], room).await, (1..=stored.len() as i64).collect::<Vec<_>>());
}

/// On SIGTERM the server stores what is queued and answers it before it closes the sockets: a
/// message found stored after the restart was acknowledged on the socket that sent it (what was
/// not stored is simply resent by the client, under the same client_id).
async fn shutdown_answers_every_message_it_stored_before_closing_the_sockets(backend: Backend) {
    let mut app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut ws = app.ws_ready(&users[0].access).await;
    for n in 0..300 {
        ws.send(send(room, &format!("s{n}"), "just before shutdown")).await;
    }
    // The writer is at work when the signal comes: the first answer is in.
    let first = ws.next_of("ack").await;
    let status = tokio::task::block_in_place(|| app.terminate());
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}\n{}", app.server_log());
    let (frames, ending) = ws.frames_until_close(Duration::from_secs(5)).await;
    assert!(matches!(&ending, Ending::Closed(Some(frame)) if u16::from(frame.code) == 1012), "{ending:?}");
    let acked: HashSet<String> =
        frames.iter().chain([&first]).filter(|f| f["type"] == "ack").map(|f| f["client_id"].as_str().unwrap().to_owned()).collect();
    app.start_server().await;
    let mut stored: Vec<String> = Vec::new();
    loop {
        let path = format!("/api/contact/chat-room/message/{room}/?limit=200&after={}", stored.len());
        let page = app.get(&path, Some(&users[0].access)).await;
        stored.extend(page.body["messages"].as_array().unwrap().iter().map(|m| m["client_id"].as_str().unwrap().to_owned()));
        if page.body["has_more"] != true {
            break;
        }
    }
    assert!(!stored.is_empty());
    let unanswered: Vec<&String> = stored.iter().filter(|id| !acked.contains(*id)).collect();
    assert!(unanswered.is_empty(), "{} of {} stored messages were never acknowledged: {unanswered:?}", unanswered.len(), stored.len());
}

/// A device had seqs 1-3; 4-8 were stored while it was away. It reconnects and, before it says
/// anything, 9 and 10 arrive and are let through by the grace period. Its sync from 3 comes
/// late, but still brings 4-8: nothing the connection never received is skipped.
async fn a_late_sync_still_brings_what_the_connection_missed_below_the_live_messages(backend: Backend) {
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let (ann, bob) = (&users[0], &users[1]);
    let room = app.private_room(ann, bob).await;
    app.say_numbered(ann, room, 1..=8).await;
    let mut device = app.ws(&bob.access).await;
    app.say_numbered(ann, room, 9..=10).await;
    // Past the grace period: the live messages are let through unsynced.
    let mut live = Vec::new();
    while let Some(frame) = device.next_within(Duration::from_secs(4)).await {
        if frame["type"] == "message" {
            live.push(frame["message"]["seq"].as_i64().unwrap());
        }
        if live.len() == 2 {
            break;
        }
    }
    assert_eq!(live, [9, 10], "live messages after the grace period");
    device.send(json!({"type": "sync", "cursors": {room.to_string(): 3}})).await;
    let (caught_up, synced) = device.message_seqs_until_synced(room).await;
    assert_eq!(caught_up, [4, 5, 6, 7, 8], "the late sync fills the gap below the live messages, once each");
    assert_eq!(synced["cursors"][room.to_string()], 10);
    // Nothing arrives twice afterwards.
    app.say(ann, room, "m11", "c11").await;
    let next = device.next_of("message").await;
    assert_eq!(next["message"]["seq"], 11);
}

/// A frame that is random, or a valid frame mutated: truncated, fields retyped or swapped for
/// extremes, bytes flipped, odd Unicode.
fn fuzzed_frame(rng: &mut impl rand::Rng, room: i64, n: usize) -> Message {
    use rand::seq::IndexedRandom;
    let extremes =
        [json!(null), json!(-1), json!(0), json!(i64::MAX), json!(u64::MAX), json!(1e308), json!("x"), json!([]), json!({}), json!(true)];
    let valid = [
        send(room, &format!("fz-{n}"), "fuzz"),
        json!({"type": "typing", "room_id": room}),
        json!({"type": "read", "room_id": room, "seq": 1}),
        json!({"type": "sync", "cursors": {room.to_string(): 0}}),
        json!({"type": "ping"}),
    ];
    let mut frame = valid.choose(rng).unwrap().clone();
    match rng.random_range(0..9) {
        0 => {
            let key = ["type", "room_id", "client_id", "body", "seq", "cursors"].choose(rng).unwrap().to_string();
            frame[key] = extremes.choose(rng).unwrap().clone();
        }
        1 => frame["body"] = json!("\u{0}\u{202e}\u{fffd}😀".repeat(rng.random_range(1..2000))),
        2 => frame["type"] = json!(["send", "typing", "read", "sync", "ping", "SEND", "", "ack"].choose(rng).unwrap()),
        3 => {
            let text = frame.to_string();
            let cut = rng.random_range(0..text.len());
            return Message::text(text[..cut].to_owned());
        }
        4 => {
            let mut bytes = frame.to_string().into_bytes();
            for _ in 0..3 {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random_range(0x20..0x7f);
            }
            return Message::text(String::from_utf8_lossy(&bytes).into_owned());
        }
        5 => return Message::binary((0..rng.random_range(0..512)).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()),
        6 => return Message::text((0..rng.random_range(0..200)).map(|_| rng.random_range(' '..'~')).collect::<String>()),
        7 => frame = json!([frame, frame]),
        _ => {}
    }
    Message::text(frame.to_string())
}

async fn a_frame_fuzzer_leaves_the_server_healthy_and_every_ack_stored(backend: Backend) {
    use rand::SeedableRng;
    let app = spawn_app!(backend);
    let users = app.friends(&["ann", "bob"]).await;
    let room = app.private_room(&users[0], &users[1]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261121);
    let mut ws = app.ws_ready(&users[0].access).await;
    for n in 0..600 {
        ws.send_raw(fuzzed_frame(&mut rng, room, n)).await;
    }
    ws.send(json!({"type": "ping"})).await;
    let mut acked = Vec::new();
    loop {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => acked.push(frame["client_id"].as_str().unwrap().to_owned()),
            Some("pong") => break,
            _ => {}
        }
    }
    // Acks still in flight after the pong.
    for frame in ws.collect_of("ack", Duration::from_millis(500)).await {
        acked.push(frame["client_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK, "the server is healthy");
    let page = app.get(&format!("/api/contact/chat-room/message/{room}/?limit=200"), Some(&users[0].access)).await;
    let stored: HashSet<String> =
        page.body["messages"].as_array().unwrap().iter().map(|m| m["client_id"].as_str().unwrap().to_owned()).collect();
    assert!(!acked.is_empty(), "some mutated frames were still valid sends");
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} is not stored");
    }
    // Oversized frames close the connection; the server carries on.
    ws.send_raw(Message::text("x".repeat(100 * 1024))).await;
    let (_, ending) = ws.read_to_end(Duration::from_secs(5)).await;
    assert!(matches!(ending, Ending::Closed(_) | Ending::Dropped));
    let mut again = app.ws_ready(&users[0].access).await;
    again.send(send(room, "after-fuzz", "still here")).await;
    assert_eq!(again.next_of("ack").await["client_id"], "after-fuzz");
}
