import { afterEach, describe, expect, it, vi } from 'vitest';
import { deltaText, streamChat } from './assistant-api';

function sseResponse(chunks: string[], status = 200): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(body, { status, headers: { 'Content-Type': 'text/event-stream' } });
}

afterEach(() => vi.unstubAllGlobals());

describe('streamChat', () => {
  it('hands over each delta as it arrives and resolves with the done event', async () => {
    const fetch = vi.fn(async (_request: Request) =>
      sseResponse([
        'event: delta\ndata: {"delta":"Bon"}\n\n',
        'event: delta\ndata: {"delta":"jour"}\n\nevent: done\ndata: {"conversation_id":7,"reply":"Bonjour","tokens_used":5,"token_balance":95}\n\n',
      ]),
    );
    vi.stubGlobal('fetch', fetch);
    const deltas: string[] = [];
    const reply = await streamChat({ message: 'Hello in French?' }, (t) => deltas.push(t));
    expect(deltas).toEqual(['Bon', 'jour']);
    expect(reply).toEqual({ conversation_id: 7, reply: 'Bonjour', tokens_used: 5, token_balance: 95 });
    const request = fetch.mock.calls[0][0];
    expect(request.url).toMatch(/\/api\/contact\/chat_ai\/stream\/$/);
    expect(await request.json()).toEqual({ message: 'Hello in French?' });
  });

  it.each([
    [402, 'insufficient_tokens'],
    [503, 'ai_unavailable'],
    [404, 'not_found'],
  ])('rejects with the API error on %i', async (status, code) => {
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ error: { code, message: 'nope' } }), { status, headers: { 'Content-Type': 'application/json' } }));
    await expect(streamChat({ message: 'x' }, () => undefined)).rejects.toMatchObject({ status, code });
  });

  it('rejects when the stream ends without a done event', async () => {
    vi.stubGlobal('fetch', async () => sseResponse(['event: delta\ndata: {"delta":"Hal"}\n\n']));
    await expect(streamChat({ message: 'x' }, () => undefined)).rejects.toMatchObject({ message: 'The reply was cut off. Try again.' });
  });

  it('rejects with the error event of a stream that fails midway', async () => {
    vi.stubGlobal('fetch', async () => sseResponse(['event: delta\ndata: "Hal"\n\nevent: error\ndata: {"error":{"code":"ai_unavailable","message":"provider down"}}\n\n']));
    await expect(streamChat({ message: 'x' }, () => undefined)).rejects.toMatchObject({ code: 'ai_unavailable', message: 'provider down' });
  });
});

describe('deltaText', () => {
  it('reads the common encodings of a delta', () => {
    expect(deltaText('{"delta":"a"}')).toBe('a');
    expect(deltaText('{"content":"b"}')).toBe('b');
    expect(deltaText('"c"')).toBe('c');
    expect(deltaText('plain d')).toBe('plain d');
  });
});
