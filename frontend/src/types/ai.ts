/**
 * The AI assistant's shapes, written from API.md and the `ai` routes of openapi.yaml (which
 * were still being built when this was written: hence by hand, and tolerant of either id type).
 */
export type ConversationId = string | number;

export interface AiChatRequest {
  message: string;
  conversation_id?: ConversationId;
}

/** The body of `POST /api/contact/chat_ai/` and of the stream's `done` event. */
export interface AiReply {
  conversation_id: ConversationId;
  reply: string;
  tokens_used: number;
  token_balance: number;
}

export interface TokenBalance {
  balance: number;
  used: number;
  granted: number;
}

export interface AiHistoryItem {
  id: number;
  conversation_id: ConversationId;
  role: string;
  content: string;
  tokens: number;
  created_at: string;
}

/** `GET /api/contact/chat_ai_conversations/`. */
export interface AiConversation {
  id: ConversationId;
  title: string;
  created_at: string;
  updated_at: string;
}
