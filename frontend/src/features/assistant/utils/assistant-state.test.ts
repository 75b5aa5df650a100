import { describe, expect, it } from 'vitest';
import { ApiError } from '@/lib/api-error';
import { availabilityOf, conversationsFrom, initialThread, threadReducer, type ThreadState } from './assistant-state';

function run(...actions: Parameters<typeof threadReducer>[1][]): ThreadState {
  return actions.reduce(threadReducer, initialThread);
}

describe('the assistant thread', () => {
  it('streams a reply piece by piece, then settles on the final text', () => {
    const streaming = run({ type: 'send', id: '1', message: 'Hi?' }, { type: 'delta', text: 'Hel' }, { type: 'delta', text: 'lo' });
    expect(streaming.streaming).toBe(true);
    expect(streaming.turns.map((t) => [t.role, t.content, t.status])).toEqual([
      ['user', 'Hi?', 'done'],
      ['assistant', 'Hello', 'streaming'],
    ]);
    const done = threadReducer(streaming, { type: 'done', reply: { conversation_id: 42, reply: 'Hello!', tokens_used: 12, token_balance: 988 } });
    expect(done.streaming).toBe(false);
    expect(done.conversationId).toBe('42');
    expect(done.turns[1]).toMatchObject({ content: 'Hello!', status: 'done' });
  });

  it('keeps what arrived when the reply fails or is stopped', () => {
    const failed = run({ type: 'send', id: '1', message: 'Hi?' }, { type: 'delta', text: 'Part' }, { type: 'failed', error: new Error('cut off') });
    expect(failed.turns[1]).toMatchObject({ content: 'Part', status: 'error', error: 'cut off' });
    expect(failed.error?.message).toBe('cut off');
    const stopped = run({ type: 'send', id: '1', message: 'Hi?' }, { type: 'stopped' }, { type: 'delta', text: 'late' });
    expect(stopped.turns[1]).toMatchObject({ content: '', status: 'stopped' });
  });

  it('loads a conversation from history in time order, but not over a reply in progress', () => {
    const history = [
      { id: 2, conversation_id: 'c1', role: 'assistant', content: 'Hello', tokens: 3, created_at: '2026-01-01T00:00:02Z' },
      { id: 1, conversation_id: 'c1', role: 'user', content: 'Hi', tokens: 1, created_at: '2026-01-01T00:00:01Z' },
    ];
    const loaded = threadReducer({ ...initialThread, conversationId: 'c1' }, { type: 'loaded', conversationId: 'c1', history });
    expect(loaded.turns.map((t) => t.content)).toEqual(['Hi', 'Hello']);
    const busy = threadReducer({ ...initialThread, conversationId: 'c1', streaming: true }, { type: 'loaded', conversationId: 'c1', history });
    expect(busy.turns).toEqual([]);
  });
});

describe('availability', () => {
  it('tells "not configured", "out of tokens" and "not on this server" apart', () => {
    expect(availabilityOf(new ApiError(503, 'ai_unavailable', 'no provider')).kind).toBe('unconfigured');
    expect(availabilityOf(new ApiError(402, 'insufficient_tokens', 'no tokens')).kind).toBe('out_of_tokens');
    expect(availabilityOf(new ApiError(404, 'not_found', 'no route for GET /api/contact/token_balance/')).kind).toBe('missing');
    expect(availabilityOf(new ApiError(500, 'internal_error', 'boom')).kind).toBe('ok');
    expect(availabilityOf(null).kind).toBe('ok');
  });
});

describe('conversations from history', () => {
  it('are titled by their first question and ordered by last activity', () => {
    const list = conversationsFrom([
      { id: 1, conversation_id: 1, role: 'user', content: 'First question', tokens: 1, created_at: '2026-01-01T00:00:00Z' },
      { id: 2, conversation_id: 1, role: 'assistant', content: 'Answer', tokens: 1, created_at: '2026-01-01T00:00:01Z' },
      { id: 3, conversation_id: 2, role: 'user', content: 'Second topic', tokens: 1, created_at: '2026-01-02T00:00:00Z' },
      { id: 4, conversation_id: 1, role: 'user', content: 'Follow-up', tokens: 1, created_at: '2026-01-03T00:00:00Z' },
    ]);
    expect(list.map((c) => [c.id, c.title])).toEqual([
      ['1', 'First question'],
      ['2', 'Second topic'],
    ]);
  });
});
