//! The AI assistant: conversations with any OpenAI-compatible model (async-openai), plain or
//! streamed, paid from a per-user token balance (reserve, call, settle), with a small table of
//! predefined replies that cost nothing and need no provider.

pub mod balance;

use std::collections::HashMap;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Config;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::ids::UserId;

/// Longest prompt, in characters.
pub const PROMPT_MAX_CHARS: usize = 4000;

/// A rough token count: about four characters a token, as OpenAI's tokenizers average on
/// English text. Used only to size reservations and for output a client cut short.
pub fn estimate_tokens(text: &str) -> i64 {
    (text.chars().count() as i64 + 3) / 4 + 1
}

/// The configured provider and assistant settings.
pub struct Assistant {
    pub client: Option<(Client<OpenAIConfig>, String, bool)>,
    pub predefined: HashMap<String, String>,
    pub grant: i64,
    pub max_reply_tokens: u32,
    pub context_tokens: usize,
    pub system_prompt: String,
    pub timeout: Duration,
}

/// The replies answered without a provider, unless `AI_PREDEFINED_REPLIES` names a file.
fn default_predefined() -> HashMap<String, String> {
    [
        ("hello", "Hello! I'm the assistant of this chat. Ask me anything."),
        ("hi", "Hi! I'm the assistant of this chat. Ask me anything."),
        (
            "help",
            "Ask me a question and I'll answer it. Replies are paid from your token balance, shown at the top of this page; these greetings are free.",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn prompt_key(prompt: &str) -> String {
    prompt.trim().to_lowercase()
}

impl Assistant {
    pub fn new(config: &Config) -> anyhow::Result<Assistant> {
        let client = match &config.ai {
            None => None,
            Some(provider) => {
                let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
                let openai = OpenAIConfig::new().with_api_key(provider.api_key.clone()).with_api_base(provider.base_url.clone());
                Some((Client::build(http, openai), provider.model.clone(), provider.custom_base))
            }
        };
        let predefined = match &config.ai_predefined_replies {
            None => default_predefined(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("AI_PREDEFINED_REPLIES {}: {e}", path.display()))?;
                let table: HashMap<String, String> = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("AI_PREDEFINED_REPLIES must be a JSON object of strings: {e}"))?;
                table.into_iter().map(|(k, v)| (prompt_key(&k), v)).collect()
            }
        };
        Ok(Assistant {
            client,
            predefined,
            grant: config.ai_token_grant,
            max_reply_tokens: config.ai_max_reply_tokens,
            context_tokens: config.ai_context_tokens,
            system_prompt: config.ai_system_prompt.clone(),
            timeout: config.ai_timeout,
        })
    }

    /// Reservations older than this were left by a crash: no request lives that long.
    pub fn stale_before(&self) -> NaiveDateTime {
        db::now() - chrono::Duration::seconds((self.timeout.as_secs() * 10 + 60) as i64)
    }

    pub fn provider(&self) -> ApiResult<&(Client<OpenAIConfig>, String, bool)> {
        self.client.as_ref().ok_or_else(|| {
            ApiError::AiUnavailable(
                "the AI assistant is not configured: set OPENAI_API_KEY (and OPENAI_BASE_URL and OPENAI_MODEL for another OpenAI-compatible provider)"
                    .into(),
            )
        })
    }
}

/// What the caller asks.
#[derive(Debug, Clone)]
pub struct Ask {
    pub user_id: UserId,
    pub message: String,
    pub conversation_id: Option<i64>,
}

/// A finished reply (`POST /api/contact/chat_ai/`, and the `done` event of the stream).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AiReply {
    pub conversation_id: i64,
    pub reply: String,
    /// Tokens charged for this reply (0 for predefined replies).
    pub tokens_used: i64,
    /// Tokens available after it.
    pub token_balance: i64,
}

/// One stored turn (`GET /api/contact/chat_ai_history/`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AiHistoryEntry {
    pub id: i64,
    pub conversation_id: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub tokens: i64,
    pub created_at: DateTime<Utc>,
}

/// A conversation (`GET /api/contact/chat_ai_conversations/`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AiConversation {
    pub id: i64,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks a prompt: 1 to 4,000 characters, no control characters but newlines and tabs.
pub fn validate_prompt(message: &str) -> ApiResult<()> {
    if message.trim().is_empty() {
        return Err(ApiError::invalid_field("message", "this field may not be blank"));
    }
    if message.chars().count() > PROMPT_MAX_CHARS {
        return Err(ApiError::PayloadTooLarge(format!("a prompt is at most {PROMPT_MAX_CHARS} characters long")));
    }
    if message.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(ApiError::invalid_field("message", "may not contain control characters"));
    }
    Ok(())
}
