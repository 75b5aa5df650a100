/**
 * The AI assistant's shapes, written from API.md: these routes are not in openapi.yaml yet.
 * Replace with the generated types once they are.
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
