/** The assistant page's conversation as a reducer: turns, streaming, and what to show on errors. */
import { type ApiError, isApiError } from '@/lib/api-error';
import type { AiHistoryItem, AiReply } from '@/types/ai';

export type TurnStatus = 'streaming' | 'done' | 'error' | 'stopped';

export interface Turn {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  status: TurnStatus;
  error?: string;
}

export interface ThreadState {
  conversationId: string | null;
  turns: Turn[];
  streaming: boolean;
  /** The last failure, for the page to explain (unconfigured, out of tokens…). */
  error: ApiError | Error | null;
}

export type ThreadAction =
  | { type: 'reset'; conversationId: string | null }
  | { type: 'loaded'; conversationId: string; history: AiHistoryItem[] }
  | { type: 'send'; id: string; message: string }
  | { type: 'delta'; text: string }
  | { type: 'done'; reply: AiReply }
  | { type: 'failed'; error: ApiError | Error }
  | { type: 'stopped' };

export const initialThread: ThreadState = { conversationId: null, turns: [], streaming: false, error: null };

function updateLastAssistant(turns: Turn[], fn: (turn: Turn) => Turn): Turn[] {
  const index = turns.length - 1;
  if (index < 0 || turns[index].role !== 'assistant') return turns;
  return [...turns.slice(0, index), fn(turns[index])];
}

export function historyToTurns(history: AiHistoryItem[]): Turn[] {
  return [...history]
    .filter((item) => item.role === 'user' || item.role === 'assistant')
    .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id)
    .map((item) => ({ id: `h-${item.id}`, role: item.role as 'user' | 'assistant', content: item.content, status: 'done' }));
}

export function threadReducer(state: ThreadState, action: ThreadAction): ThreadState {
  switch (action.type) {
    case 'reset':
      return { ...initialThread, conversationId: action.conversationId };
    case 'loaded':
      if (state.streaming || state.conversationId !== action.conversationId) return state;
      return { ...state, turns: historyToTurns(action.history) };
    case 'send':
      return {
        ...state,
        streaming: true,
        error: null,
        turns: [
          ...state.turns,
          { id: `u-${action.id}`, role: 'user', content: action.message, status: 'done' },
          { id: `a-${action.id}`, role: 'assistant', content: '', status: 'streaming' },
        ],
      };
    case 'delta':
      if (!state.streaming) return state;
      return { ...state, turns: updateLastAssistant(state.turns, (t) => ({ ...t, content: t.content + action.text })) };
    case 'done':
      return {
        ...state,
        streaming: false,
        conversationId: String(action.reply.conversation_id),
        // The final text is authoritative, whatever the deltas added up to.
        turns: updateLastAssistant(state.turns, (t) => ({ ...t, content: action.reply.reply || t.content, status: 'done' })),
      };
    case 'failed':
      return {
        ...state,
        streaming: false,
        error: action.error,
        turns: updateLastAssistant(state.turns, (t) => ({ ...t, status: 'error', error: action.error.message })),
      };
    case 'stopped':
      return { ...state, streaming: false, turns: updateLastAssistant(state.turns, (t) => ({ ...t, status: 'stopped' })) };
  }
}

export type Availability =
  | { kind: 'ok' }
  | { kind: 'unconfigured' | 'missing' | 'out_of_tokens' | 'signed_out'; title: string; message: string };

/** What an error from the assistant's routes means for the page. */
export function availabilityOf(error: unknown): Availability {
  if (!isApiError(error)) return { kind: 'ok' };
  switch (error.code) {
    case 'ai_unavailable':
      return { kind: 'unconfigured', title: 'The assistant is not available', message: 'This server has no AI provider configured, or it cannot be reached right now.' };
    case 'insufficient_tokens':
      return { kind: 'out_of_tokens', title: 'You are out of tokens', message: 'Your token balance cannot pay for another reply.' };
    case 'not_found':
      return error.status === 404
        ? { kind: 'missing', title: 'The assistant is not available on this server', message: 'This server does not offer the AI assistant yet.' }
        : { kind: 'ok' };
    default:
      return { kind: 'ok' };
  }
}

/** Conversations found in the history, newest first, titled by their first question. */
export function conversationsFrom(history: AiHistoryItem[]): Array<{ id: string; title: string; updatedAt: string }> {
  const byId = new Map<string, { id: string; title: string; updatedAt: string; firstAt: number }>();
  for (const item of history) {
    const id = String(item.conversation_id);
    const at = Date.parse(item.created_at);
    const entry = byId.get(id);
    if (!entry) {
      byId.set(id, { id, title: item.role === 'user' ? item.content : '', updatedAt: item.created_at, firstAt: item.role === 'user' ? at : Infinity });
      continue;
    }
    if (at > Date.parse(entry.updatedAt)) entry.updatedAt = item.created_at;
    if (item.role === 'user' && at < entry.firstAt) {
      entry.firstAt = at;
      entry.title = item.content;
    }
  }
  return [...byId.values()]
    .map(({ id, title, updatedAt }) => ({ id, title: title.trim().slice(0, 80) || 'Conversation', updatedAt }))
    .sort((a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt));
}
