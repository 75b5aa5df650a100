import { useQuery } from '@tanstack/react-query';
import { ApiError, apiErrorFromBody, apiErrorFromResponse, isApiError } from '@/lib/api-error';
import { apiOrigin, session } from '@/lib/api-client';
import { readSse } from '@/lib/sse';
import type { AiChatRequest, AiConversation, AiHistoryItem, AiReply, TokenBalance } from '@/types/ai';
import { conversationsFrom } from '../utils/assistant-state';
import { assistantKeys } from './query-keys';

async function getJson<T>(path: string): Promise<T> {
  const response = await session.authFetch(`${apiOrigin}${path}`, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw await apiErrorFromResponse(response);
  return (await response.json()) as T;
}

export function getTokenBalance(): Promise<TokenBalance> {
  return getJson<TokenBalance>('/api/contact/token_balance/');
}

export function getHistory(conversationId?: string, limit = 200): Promise<AiHistoryItem[]> {
  const params = new URLSearchParams({ limit: String(limit) });
  if (conversationId !== undefined) params.set('conversation_id', conversationId);
  return getJson<AiHistoryItem[]>(`/api/contact/chat_ai_history/?${params}`);
}

export function useTokenBalance() {
  return useQuery({ queryKey: assistantKeys.balance, queryFn: getTokenBalance, retry: false });
}

export function useConversationHistory(conversationId: string | null) {
  return useQuery({
    queryKey: assistantKeys.conversation(conversationId ?? ''),
    queryFn: () => getHistory(conversationId ?? undefined),
    enabled: conversationId !== null,
    retry: false,
    staleTime: Infinity,
  });
}

export interface ConversationSummary {
  id: string;
  title: string;
  updatedAt: string;
}

/**
 * The user's conversations, most recent first. A server without the conversations route yet
 * (404) gets them from the history instead.
 */
export async function getConversations(): Promise<ConversationSummary[]> {
  try {
    const list = await getJson<AiConversation[]>('/api/contact/chat_ai_conversations/');
    return list.map((c) => ({ id: String(c.id), title: c.title.trim() || 'Conversation', updatedAt: c.updated_at }));
  } catch (error) {
    if (!(isApiError(error) && error.status === 404 && error.message.startsWith('no route'))) throw error;
    return conversationsFrom(await getHistory(undefined));
  }
}

export function useConversations() {
  return useQuery({ queryKey: assistantKeys.conversations, queryFn: getConversations, retry: false });
}

/** The text of a `delta` event: a JSON string, an object with the text, or plain text. */
export function deltaText(data: string): string {
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null) {
      for (const key of ['delta', 'content', 'text', 'token']) {
        const text = (value as Record<string, unknown>)[key];
        if (typeof text === 'string') return text;
      }
      return '';
    }
  } catch {
    // Plain text.
  }
  return data;
}

function parseDone(data: string): AiReply {
  const value = JSON.parse(data) as Partial<AiReply>;
  if (value.conversation_id === undefined || typeof value.reply !== 'string') throw new Error('malformed done event');
  return {
    conversation_id: value.conversation_id,
    reply: value.reply,
    tokens_used: Number(value.tokens_used ?? 0),
    token_balance: Number(value.token_balance ?? 0),
  };
}

/**
 * Asks the assistant and streams its reply: `onDelta` gets each piece as it arrives; the
 * promise resolves with the `done` event. Failures before the stream starts carry the API's
 * error (402 `insufficient_tokens`, 503 `ai_unavailable`, …); an `error` event mid-stream too.
 */
export async function streamChat(request: AiChatRequest, onDelta: (text: string) => void, signal?: AbortSignal): Promise<AiReply> {
  const response = await session.authFetch(`${apiOrigin}/api/contact/chat_ai/stream/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(request),
    signal,
  });
  if (!response.ok) throw await apiErrorFromResponse(response);
  if (!response.body) throw new ApiError(response.status, 'unknown', 'The reply could not be read.');
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('text/event-stream')) {
    // A server that answers in one piece: accept the documented non-streaming shape too.
    const reply = (await response.json()) as AiReply;
    onDelta(reply.reply);
    return reply;
  }
  let done: AiReply | null = null;
  for await (const event of readSse(response.body, signal)) {
    if (event.event === 'delta' || event.event === 'message') {
      const text = deltaText(event.data);
      if (text) onDelta(text);
    } else if (event.event === 'done') {
      done = parseDone(event.data);
    } else if (event.event === 'error') {
      let body: unknown = null;
      try {
        body = JSON.parse(event.data);
      } catch {
        body = { error: { code: 'unknown', message: event.data } };
      }
      const error = apiErrorFromBody(502, body);
      throw error.code === 'unknown' && !(body as { error?: unknown })?.error ? new ApiError(502, 'unknown', 'The assistant stopped with an error.') : error;
    }
  }
  if (!done) throw new ApiError(502, 'unknown', 'The reply was cut off. Try again.');
  return done;
}
