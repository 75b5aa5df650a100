//! The AI assistant against the real server and an OpenAI-compatible server started by the
//! test: replies and charges, context, history privacy, balance limits under concurrency,
//! upstream failures, streaming, disconnects, predefined replies and the admin grant.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::openai::{COMPLETION_TOKENS, FakeOpenAi, LEAKED_KEY, PROMPT_TOKENS};
use crate::common::{Backend, TestApp, TestUser};
use crate::{on_both_backends, spawn_app};

const CHARGE: i64 = PROMPT_TOKENS + COMPLETION_TOKENS;

on_both_backends!(
    a_reply_is_charged_its_reported_usage,
    the_conversation_reaches_the_provider_as_context,
    history_is_private_to_its_owner,
    an_empty_balance_is_refused_before_any_provider_call,
    concurrent_requests_never_overdraw_the_balance,
    upstream_failures_and_timeouts_charge_nothing,
    a_stream_assembles_to_the_full_reply,
    a_client_leaving_a_stream_stops_the_upstream_call,
    predefined_prompts_are_free_and_need_no_provider,
    admins_grant_tokens,
);

async fn with_ai(backend: Backend, fake: &FakeOpenAi, extra: &[(&str, &str)]) -> Option<TestApp> {
    let base = fake.base_url();
    let mut env: Vec<(&str, &str)> = vec![("OPENAI_BASE_URL", base.as_str()), ("OPENAI_MODEL", "test-model"), ("AI_TIMEOUT_SECS", "2")];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

async fn ask(app: &TestApp, user: &TestUser, message: &str, conversation: Option<i64>) -> crate::common::Answer {
    app.post("/api/contact/chat_ai/", json!({"message": message, "conversation_id": conversation}), Some(&user.access)).await
}

async fn balance(app: &TestApp, user: &TestUser) -> Value {
    let answer = app.get("/api/contact/token_balance/", Some(&user.access)).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.body
}

/// Reads a server-sent event stream to its end: the deltas' text and the final event.
async fn read_stream(response: reqwest::Response) -> (String, String, Value) {
    let text = response.text().await.unwrap();
    let (mut deltas, mut last_name, mut last_data) = (String::new(), String::new(), Value::Null);
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let name = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_owned();
        let data: Value = serde_json::from_str(block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null")).unwrap();
        if name == "delta" {
            deltas.push_str(data["content"].as_str().unwrap());
        }
        (last_name, last_data) = (name, data);
    }
    (deltas, last_name, last_data)
}

async fn a_reply_is_charged_its_reported_usage(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "1000")]).await else { return };
    let user = app.register("ann").await;
    assert_eq!(balance(&app, &user).await, json!({"balance": 1000, "used": 0, "granted": 1000}));
    let answer = ask(&app, &user, "what is a monad?", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["reply"], "Echo: what is a monad?");
    assert_eq!(answer.body["tokens_used"], CHARGE);
    assert_eq!(answer.body["token_balance"], 1000 - CHARGE);
    assert!(answer.body["conversation_id"].is_i64());
    assert_eq!(balance(&app, &user).await, json!({"balance": 1000 - CHARGE, "used": CHARGE, "granted": 1000}));
    let request = &fake.requests()[0];
    assert_eq!(request["model"], "test-model");
    assert!(request["max_tokens"].as_u64().unwrap() <= 1024, "the reply is bounded: {request}");
    let blank = ask(&app, &user, "   ", None).await;
    assert_eq!((blank.status, blank.code()), (StatusCode::BAD_REQUEST, "validation_error"));
    let long = ask(&app, &user, &"x".repeat(4001), None).await;
    assert_eq!(long.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(fake.requests().len(), 1, "bad prompts never reach the provider");
}

async fn the_conversation_reaches_the_provider_as_context(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_SYSTEM_PROMPT", "You are a test assistant.")]).await else { return };
    let user = app.register("ann").await;
    let first = ask(&app, &user, "my name is Ann", None).await;
    let conversation = first.body["conversation_id"].as_i64().unwrap();
    let second = ask(&app, &user, "what is my name?", Some(conversation)).await;
    assert_eq!(second.body["conversation_id"], conversation);
    let messages = fake.requests()[1]["messages"].clone();
    let turns: Vec<(String, String)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        turns,
        [
            ("system".to_owned(), "You are a test assistant.".to_owned()),
            ("user".to_owned(), "my name is Ann".to_owned()),
            ("assistant".to_owned(), "Echo: my name is Ann".to_owned()),
            ("user".to_owned(), "what is my name?".to_owned()),
        ]
    );
    let fresh = ask(&app, &user, "new topic", None).await;
    assert_ne!(fresh.body["conversation_id"], conversation);
    assert_eq!(fake.requests()[2]["messages"].as_array().unwrap().len(), 2, "a new conversation has no earlier turns");
}

async fn history_is_private_to_its_owner(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[]).await else { return };
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let conversation = ask(&app, &ann, "secret plan", None).await.body["conversation_id"].as_i64().unwrap();
    ask(&app, &ann, "more of it", Some(conversation)).await;
    let history = app.get(&format!("/api/contact/chat_ai_history/?conversation_id={conversation}"), Some(&ann.access)).await;
    assert_eq!(history.status, StatusCode::OK);
    let entries = history.body.as_array().unwrap();
    let roles: Vec<&str> = entries.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(entries[0]["content"], "secret plan");
    assert_eq!(entries[1]["tokens"].as_i64().unwrap() + entries[0]["tokens"].as_i64().unwrap(), CHARGE);
    let paged = app.get("/api/contact/chat_ai_history/?limit=1&offset=1", Some(&ann.access)).await;
    assert_eq!(paged.body[0]["role"], "assistant");
    let conversations = app.get("/api/contact/chat_ai_conversations/", Some(&ann.access)).await;
    assert_eq!(conversations.body[0]["title"], "secret plan");

    let stolen = app.get(&format!("/api/contact/chat_ai_history/?conversation_id={conversation}"), Some(&bob.access)).await;
    assert_eq!((stolen.status, stolen.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.get("/api/contact/chat_ai_history/", Some(&bob.access)).await.body, json!([]));
    assert_eq!(app.get("/api/contact/chat_ai_conversations/", Some(&bob.access)).await.body, json!([]));
    let hijack = ask(&app, &bob, "continue it", Some(conversation)).await;
    assert_eq!(hijack.status, StatusCode::NOT_FOUND, "nobody continues another user's conversation");
    assert_eq!(app.get("/api/contact/chat_ai_history/?limit=500", Some(&ann.access)).await.status, StatusCode::BAD_REQUEST);
}

async fn an_empty_balance_is_refused_before_any_provider_call(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "0")]).await else { return };
    let user = app.register("ann").await;
    let refused = ask(&app, &user, "hello there, model", None).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::PAYMENT_REQUIRED, "insufficient_tokens"));
    let streamed = app.post("/api/contact/chat_ai/stream/", json!({"message": "hello there, model"}), Some(&user.access)).await;
    assert_eq!(streamed.status, StatusCode::PAYMENT_REQUIRED, "the stream refuses before starting");
    assert!(fake.requests().is_empty(), "no provider call was made");
}

async fn concurrent_requests_never_overdraw_the_balance(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    // Each request reserves about 1,000 tokens (its prompt plus the longest reply), so only
    // two fit into 2,100 at a time, whatever the provider will charge in the end.
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "2100"), ("AI_MAX_REPLY_TOKENS", "1000")]).await else { return };
    let user = app.register("ann").await;
    // The provider takes 300 ms, so all ten are in flight together.
    let questions: Vec<String> = (0..10).map(|i| format!("question {i} [delay]")).collect();
    let answers = futures_util::future::join_all(questions.iter().map(|q| ask(&app, &user, q, None))).await;
    let ok = answers.iter().filter(|a| a.status == StatusCode::OK).count() as i64;
    let refused = answers.iter().filter(|a| a.status == StatusCode::PAYMENT_REQUIRED).count() as i64;
    assert_eq!(ok + refused, 10, "every request was answered or refused: {answers:?}");
    assert!(ok >= 2, "two reservations fit at once ({ok} succeeded)");
    assert!(refused >= 1, "requests beyond the balance were refused while others were in flight");
    let after = balance(&app, &user).await;
    assert_eq!(after["used"], ok * CHARGE, "each success is charged exactly once");
    assert!(after["used"].as_i64().unwrap() <= 2100 && after["balance"].as_i64().unwrap() >= 0);
    assert_eq!(fake.requests().len() as i64, ok, "refused requests never reached the provider");
    assert_eq!(after["balance"], 2100 - ok * CHARGE, "no reservation is left behind");
}

async fn upstream_failures_and_timeouts_charge_nothing(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "1000"), ("AI_TIMEOUT_SECS", "1")]).await else { return };
    let user = app.register("ann").await;
    let failed = ask(&app, &user, "please [fail]", None).await;
    assert_eq!((failed.status, failed.code()), (StatusCode::SERVICE_UNAVAILABLE, "ai_unavailable"));
    let started = Instant::now();
    let hung = ask(&app, &user, "please [hang]", None).await;
    assert_eq!((hung.status, hung.code()), (StatusCode::SERVICE_UNAVAILABLE, "ai_unavailable"));
    assert!(started.elapsed() < Duration::from_secs(5), "a hanging provider is cut off by the timeout");
    let streamed = app.post("/api/contact/chat_ai/stream/", json!({"message": "please [fail]"}), Some(&user.access)).await;
    assert_eq!(streamed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(balance(&app, &user).await, json!({"balance": 1000, "used": 0, "granted": 1000}), "nothing charged, nothing reserved");
    assert_eq!(app.get("/api/contact/chat_ai_history/", Some(&user.access)).await.body, json!([]));
    assert_eq!(ask(&app, &user, "and now?", None).await.status, StatusCode::OK, "the assistant recovers");
}

async fn a_stream_assembles_to_the_full_reply(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "1000")]).await else { return };
    let user = app.register("ann").await;
    let response = app
        .client
        .post(app.url("/api/contact/chat_ai/stream/"))
        .bearer_auth(&user.access)
        .json(&json!({"message": "tell me a long story please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (deltas, last, done) = read_stream(response).await;
    assert_eq!(last, "done");
    assert_eq!(deltas, "Echo: tell me a long story please", "the deltas add up to the reply");
    assert_eq!(done["reply"], deltas);
    assert_eq!(done["tokens_used"], CHARGE, "charged the usage of the last chunk");
    assert_eq!(done["token_balance"], 1000 - CHARGE);
    let request = &fake.requests()[0];
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
    let history = app.get("/api/contact/chat_ai_history/", Some(&user.access)).await;
    assert_eq!(history.body[1]["content"], deltas);
}

async fn a_client_leaving_a_stream_stops_the_upstream_call(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(backend, &fake, &[("AI_TOKEN_GRANT", "5000"), ("AI_TIMEOUT_SECS", "5")]).await else { return };
    let user = app.register("ann").await;
    let mut response = app
        .client
        .post(app.url("/api/contact/chat_ai/stream/"))
        .bearer_auth(&user.access)
        .json(&json!({"message": "a [slow] one"}))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: delta"));
    drop(response);
    // The slow stream would take 4 s; the server must stop it well before.
    let mut sent = None;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sent = fake.slow_chunks_sent();
        if sent.is_some() {
            break;
        }
    }
    let sent = sent.expect("the upstream connection was closed");
    assert!(sent < 40, "the upstream call stopped early ({sent} of 40 chunks)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = balance(&app, &user).await;
    let used = after["used"].as_i64().unwrap();
    assert!(used > 0, "what was produced is charged");
    assert!(used < 100, "only what was produced: {after}");
    assert_eq!(after["balance"].as_i64().unwrap(), 5000 - used, "the reservation is released");
}

async fn predefined_prompts_are_free_and_need_no_provider(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("replies.json");
    std::fs::write(&table, r#"{"What are your hours?": "We are always open."}"#).unwrap();
    let table = table.to_str().unwrap().to_owned();
    // No provider at all: predefined prompts still work, others say how to configure one.
    let app = spawn_app!(backend, &[("AI_PREDEFINED_REPLIES", table.as_str()), ("AI_TOKEN_GRANT", "0")]);
    let user = app.register("ann").await;
    let answer = ask(&app, &user, "  what are your HOURS? ", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["reply"], "We are always open.");
    assert_eq!(answer.body["tokens_used"], 0, "free, even with an empty balance");
    let streamed = app
        .client
        .post(app.url("/api/contact/chat_ai/stream/"))
        .bearer_auth(&user.access)
        .json(&json!({"message": "What are your hours?"}))
        .send()
        .await
        .unwrap();
    let (deltas, last, _) = read_stream(streamed).await;
    assert_eq!((deltas.as_str(), last.as_str()), ("We are always open.", "done"));
    let other = ask(&app, &user, "anything else", None).await;
    assert_eq!((other.status, other.code()), (StatusCode::SERVICE_UNAVAILABLE, "ai_unavailable"));
    assert!(other.body["error"]["message"].as_str().unwrap().contains("OPENAI_API_KEY"), "it says how to configure a provider");
    assert_eq!(app.get("/api/contact/token_balance/", Some(&user.access)).await.status, StatusCode::OK, "the rest works");
}

async fn admins_grant_tokens(backend: Backend) {
    let app = spawn_app!(backend, &[("AI_TOKEN_GRANT", "100")]);
    let user = app.register("ann").await;
    let denied = app.post("/api/admin/ai-tokens/", json!({"user_id": user.id, "tokens": 500}), Some(&user.access)).await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let created = app
        .command()
        .args(["createsuperuser", "--username", "root", "--email", "root@example.com"])
        .env("CHAT_SUPERUSER_PASSWORD", "an admin secret")
        .output()
        .unwrap();
    assert!(created.status.success());
    let admin = app.login("root@example.com", "an admin secret").await.body["access"].as_str().unwrap().to_owned();
    let granted = app.post("/api/admin/ai-tokens/", json!({"user_id": user.id, "tokens": 500}), Some(&admin)).await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);
    assert_eq!(granted.body, json!({"balance": 600, "used": 0, "granted": 600}));
    assert_eq!(balance(&app, &user).await["granted"], 600);
    let bad = app.post("/api/admin/ai-tokens/", json!({"user_id": user.id, "tokens": 0}), Some(&admin)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let nobody = app.post("/api/admin/ai-tokens/", json!({"user_id": 99999, "tokens": 5}), Some(&admin)).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

/// #18, finding 10: a provider's error text (a 401 that echoes the API key, its URL) reached
/// clients. It goes to the log; clients get a generic message, plain and streamed.
#[tokio::test]
async fn a_providers_error_text_reaches_the_log_and_never_the_client() {
    let fake = FakeOpenAi::start().await;
    let Some(app) = with_ai(Backend::Sqlite, &fake, &[("OPENAI_API_KEY", LEAKED_KEY)]).await else { return };
    let user = app.register("ann").await;
    let plain = ask(&app, &user, "please [leak]", None).await;
    let streamed =
        app.client.post(app.url("/api/contact/chat_ai/stream/")).bearer_auth(&user.access).json(&json!({"message": "[leak] again"}));
    let streamed = streamed.send().await.unwrap().text().await.unwrap();
    assert_eq!((plain.status, plain.code()), (StatusCode::SERVICE_UNAVAILABLE, "ai_unavailable"));
    for answer in [plain.body.to_string(), streamed] {
        assert!(!answer.contains("sk-test") && !answer.contains("127.0.0.1") && !answer.contains("Incorrect API key"), "{answer}");
    }
    assert!(app.server_log().contains("Incorrect API key"), "the operator still learns why");
}
