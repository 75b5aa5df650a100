//! The AI assistant's operations: a prompt answered plainly or streamed, paid from the user's
//! token balance (reserve, call, settle), the conversation history, and token grants.

use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, CreateChatCompletionRequest,
};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::ai::balance::{self, Balance};
use crate::ai::{AiConversation, AiHistoryEntry, AiReply, Ask, Assistant, estimate_tokens, prompt_key, validate_prompt};
use crate::db::{self, DbConn, write_tx};
use crate::dto::utc;
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;
use crate::state::State;

/// The recent turns of a conversation the caller owns, newest last (404 if not theirs).
fn context(conn: &mut DbConn, user_id: UserId, conversation_id: Option<i64>) -> ApiResult<Vec<(String, String)>> {
    let Some(conversation_id) = conversation_id else { return Ok(Vec::new()) };
    if db::ai_conversations::owner(conn, conversation_id)? != Some(user_id) {
        return Err(ApiError::NotFound("conversation not found".into()));
    }
    db::ai_conversations::recent_turns(conn, conversation_id, 100)
}

/// The request messages: system prompt, as many recent turns as fit the budget, the prompt.
fn request_messages(assistant: &Assistant, turns: &[(String, String)], prompt: &str) -> (Vec<ChatCompletionRequestMessage>, i64) {
    let mut budget = assistant.context_tokens as i64 - estimate_tokens(&assistant.system_prompt) - estimate_tokens(prompt);
    let mut kept = Vec::new();
    for (role, content) in turns.iter().rev() {
        let cost = estimate_tokens(content);
        if cost > budget {
            break;
        }
        budget -= cost;
        kept.push((role, content));
    }
    kept.reverse();
    let mut messages =
        vec![ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(assistant.system_prompt.clone()))];
    let mut tokens = estimate_tokens(&assistant.system_prompt);
    for (role, content) in kept {
        tokens += estimate_tokens(content);
        messages.push(match role.as_str() {
            "assistant" => ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage::from(content.clone())),
            _ => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(content.clone())),
        });
    }
    tokens += estimate_tokens(prompt);
    messages.push(ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(prompt.to_owned())));
    (messages, tokens)
}

/// Stores a finished exchange (creating the conversation on its first turn); returns its id.
fn store_exchange(conn: &mut DbConn, ask: &Ask, reply: &str, prompt_tokens: i64, reply_tokens: i64) -> ApiResult<i64> {
    write_tx(conn, |conn| {
        let now = db::now();
        let conversation_id = match ask.conversation_id {
            Some(id) => {
                db::ai_conversations::touch(conn, id, now)?;
                id
            }
            None => {
                let title: String = ask.message.trim().chars().take(60).collect();
                db::ai_conversations::insert(conn, ask.user_id, &title, now)?
            }
        };
        for (role, content, tokens) in [("user", ask.message.as_str(), prompt_tokens), ("assistant", reply, reply_tokens)] {
            db::ai_conversations::insert_turn(conn, conversation_id, ask.user_id, role, content, tokens, now)?;
        }
        Ok(conversation_id)
    })
}

/// What is known before the provider is called.
struct Prepared {
    ask: Ask,
    messages: Vec<ChatCompletionRequestMessage>,
    prompt_tokens: i64,
    reservation: (i64, i64),
    max_reply: u32,
}

/// Either a predefined reply (already stored) or a prepared, paid-for provider call.
enum Plan {
    Predefined(AiReply),
    Call(Prepared),
}

/// Validates, loads the context, answers predefined prompts, and reserves tokens.
async fn plan(state: &State, ask: Ask) -> ApiResult<Plan> {
    validate_prompt(&ask.message)?;
    let assistant = &state.ai;
    let (user_id, conversation_id) = (ask.user_id, ask.conversation_id);
    let turns = state.db.run(move |conn| context(conn, user_id, conversation_id)).await?;
    if let Some(reply) = assistant.predefined.get(&prompt_key(&ask.message)).cloned() {
        let (grant, stale) = (assistant.grant, assistant.stale_before());
        let stored_ask = ask.clone();
        let stored_reply = reply.clone();
        let (conversation_id, balance) = state
            .db
            .run(move |conn| {
                let id = store_exchange(conn, &stored_ask, &stored_reply, 0, 0)?;
                Ok((id, balance::balance(conn, stored_ask.user_id, grant, stale)?))
            })
            .await?;
        return Ok(Plan::Predefined(AiReply { conversation_id, reply, tokens_used: 0, token_balance: balance.balance }));
    }
    assistant.provider()?;
    let (messages, prompt_tokens) = request_messages(assistant, &turns, &ask.message);
    let wanted = prompt_tokens + i64::from(assistant.max_reply_tokens);
    let minimum = prompt_tokens + 16;
    let (grant, stale) = (assistant.grant, assistant.stale_before());
    let reservation = state.db.run(move |conn| balance::reserve(conn, user_id, grant, wanted, minimum, stale)).await?;
    let max_reply = (reservation.1 - prompt_tokens).clamp(16, i64::from(assistant.max_reply_tokens)) as u32;
    Ok(Plan::Call(Prepared { ask, messages, prompt_tokens, reservation, max_reply }))
}

fn build_request(state: &State, prepared: &Prepared, stream: bool) -> CreateChatCompletionRequest {
    let (model, custom_base) = state.ai.client.as_ref().map(|(_, m, c)| (m.clone(), *c)).unwrap_or_default();
    #[allow(deprecated)]
    let mut request = CreateChatCompletionRequest { model, messages: prepared.messages.clone(), ..Default::default() };
    // OpenAI's newer field; other OpenAI-compatible servers know the older one.
    if custom_base {
        #[allow(deprecated)]
        {
            request.max_tokens = Some(prepared.max_reply);
        }
    } else {
        request.max_completion_tokens = Some(prepared.max_reply);
    }
    if stream {
        request.stream = Some(true);
        request.stream_options = Some(ChatCompletionStreamOptions { include_usage: Some(true), ..Default::default() });
    }
    request
}

/// Releases the reservation without a charge and reports the upstream failure: the reason goes
/// to the log only (a provider's error text can carry its URL or echo the API key).
async fn refund(state: &State, prepared: &Prepared, reason: String) -> ApiError {
    let (user_id, reservation, stale) = (prepared.ask.user_id, prepared.reservation, state.ai.stale_before());
    if let Err(error) = state.db.run(move |conn| balance::settle(conn, user_id, reservation, 0, stale)).await {
        tracing::error!(error = format!("{error:?}"), "releasing an AI reservation failed");
    }
    tracing::warn!(user_id = %user_id, reason, "AI provider call failed");
    ApiError::AiUnavailable("the AI provider could not answer; try again later".into())
}

/// Charges `tokens`, stores the exchange and returns the reply.
async fn finish(state: &State, prepared: Prepared, reply: String, tokens: i64) -> ApiResult<AiReply> {
    let stale = state.ai.stale_before();
    let Prepared { ask, prompt_tokens, reservation, .. } = prepared;
    state
        .db
        .run(move |conn| {
            let (charge, balance) = balance::settle(conn, ask.user_id, reservation, tokens, stale)?;
            let conversation_id = store_exchange(conn, &ask, &reply, prompt_tokens.min(charge), (charge - prompt_tokens).max(0))?;
            Ok(AiReply { conversation_id, reply, tokens_used: charge, token_balance: balance.balance })
        })
        .await
        .inspect(|reply| {
            state.metrics.ai_tokens_charged.fetch_add(reply.tokens_used.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
        })
}

/// Asks the model and waits for the whole reply.
pub async fn ask(state: &State, ask: Ask) -> ApiResult<AiReply> {
    let prepared = match plan(state, ask).await? {
        Plan::Predefined(reply) => return Ok(reply),
        Plan::Call(prepared) => prepared,
    };
    let request = build_request(state, &prepared, false);
    let (client, _, _) = state.ai.provider()?;
    let response = match tokio::time::timeout(state.ai.timeout, client.chat().create(request)).await {
        Err(_) => return Err(refund(state, &prepared, "timed out".into()).await),
        Ok(Err(error)) => return Err(refund(state, &prepared, error.to_string()).await),
        Ok(Ok(response)) => response,
    };
    let reply = response.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
    let tokens = response.usage.map(|u| i64::from(u.total_tokens)).unwrap_or_else(|| prepared.prompt_tokens + estimate_tokens(&reply));
    finish(state, prepared, reply, tokens).await
}

/// One server-sent event.
fn event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Asks the model and streams the reply as server-sent events: `delta` events, then `done`
/// (or `error`). Everything that can fail before the first byte fails as a normal error
/// response. A client that disconnects stops the upstream call and pays for what was produced.
pub async fn ask_stream(state: &State, ask: Ask) -> ApiResult<mpsc::Receiver<Bytes>> {
    let (tx, rx) = mpsc::channel(64);
    let prepared = match plan(state, ask).await? {
        Plan::Predefined(reply) => {
            let _ = tx.try_send(event("delta", &json!({ "content": reply.reply })));
            let _ = tx.try_send(event("done", &json!(reply)));
            return Ok(rx);
        }
        Plan::Call(prepared) => prepared,
    };
    let request = build_request(state, &prepared, true);
    let (client, _, _) = state.ai.provider()?;
    let mut upstream = match tokio::time::timeout(state.ai.timeout, client.chat().create_stream(request)).await {
        Err(_) => return Err(refund(state, &prepared, "timed out".into()).await),
        Ok(Err(error)) => return Err(refund(state, &prepared, error.to_string()).await),
        Ok(Ok(stream)) => stream,
    };
    let state = state.clone();
    tokio::spawn(async move {
        let mut reply = String::new();
        let mut usage = None;
        let outcome: Result<(), String> = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(state.ai.timeout, upstream.next()) => next,
                _ = tx.closed() => break Ok(()),
            };
            match next {
                Err(_) => break Err("timed out".into()),
                Ok(None) => break Ok(()),
                Ok(Some(Err(error))) => break Err(error.to_string()),
                Ok(Some(Ok(chunk))) => {
                    if let Some(u) = chunk.usage {
                        usage = Some(i64::from(u.total_tokens));
                    }
                    let delta: String = chunk.choices.iter().filter_map(|c| c.delta.content.as_deref()).collect();
                    if !delta.is_empty() {
                        reply.push_str(&delta);
                        if tx.send(event("delta", &json!({ "content": delta }))).await.is_err() {
                            break Ok(());
                        }
                    }
                }
            }
        };
        // Stop the upstream call now (a client that left is not waited for).
        drop(upstream);
        match outcome {
            Err(reason) => {
                let error = refund(&state, &prepared, reason).await;
                let _ = tx.send(event("error", &serde_json::to_value(error.body()).unwrap_or_default())).await;
            }
            Ok(()) => {
                let gone = tx.is_closed();
                // Without the provider's count (a cut-short stream has none), estimate.
                let tokens = usage.unwrap_or_else(|| prepared.prompt_tokens + estimate_tokens(&reply));
                if gone {
                    tracing::info!(user_id = %prepared.ask.user_id, tokens, "AI stream stopped: the client disconnected");
                }
                match finish(&state, prepared, reply, tokens).await {
                    Ok(done) => {
                        let _ = tx.send(event("done", &json!(done))).await;
                    }
                    Err(error) => {
                        let _ = tx.send(event("error", &serde_json::to_value(error.body()).unwrap_or_default())).await;
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// The caller's balance.
pub async fn token_balance(state: &State, user_id: UserId) -> ApiResult<Balance> {
    let (grant, stale) = (state.ai.grant, state.ai.stale_before());
    state.db.run(move |conn| balance::balance(conn, user_id, grant, stale)).await
}

/// Adds tokens to a user's grant (admin).
pub async fn grant_tokens(state: &State, user_id: UserId, tokens: i64) -> ApiResult<Balance> {
    let (grant, stale) = (state.ai.grant, state.ai.stale_before());
    state
        .db
        .run(move |conn| {
            if !db::users::exists_any(conn, user_id)? {
                return Err(ApiError::NotFound("user not found".into()));
            }
            balance::grant(conn, user_id, grant, tokens, stale)
        })
        .await
}

/// A page of the caller's stored turns, oldest first; one conversation's when named.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub conversation_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn history(state: &State, user_id: UserId, query: HistoryQuery) -> ApiResult<Vec<AiHistoryEntry>> {
    state
        .db
        .run(move |conn| {
            if let Some(conversation_id) = query.conversation_id
                && db::ai_conversations::owner(conn, conversation_id)? != Some(user_id)
            {
                return Err(ApiError::NotFound("conversation not found".into()));
            }
            let rows = db::ai_conversations::turns_page(conn, user_id, query.conversation_id, query.limit, query.offset)?;
            Ok(rows
                .into_iter()
                .map(|(id, conversation_id, role, content, tokens, created)| AiHistoryEntry {
                    id,
                    conversation_id,
                    role,
                    content,
                    tokens,
                    created_at: utc(created),
                })
                .collect())
        })
        .await
}

/// The caller's conversations, most recently used first.
pub async fn conversations(state: &State, user_id: UserId) -> ApiResult<Vec<AiConversation>> {
    state
        .db
        .run(move |conn| {
            let rows = db::ai_conversations::recent(conn, user_id, 200)?;
            Ok(rows
                .into_iter()
                .map(|(id, title, created, updated)| AiConversation { id, title, created_at: utc(created), updated_at: utc(updated) })
                .collect())
        })
        .await
}
