import { describe, expect, it } from 'vitest';
import { readSse, type SseEvent, SseParser } from './sse';

function parse(chunks: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return events;
}

function streamOf(chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
      controller.close();
    },
  });
}

describe('SseParser', () => {
  it('reads named events and their data', () => {
    expect(parse(['event: delta\ndata: {"delta":"Hel"}\n\nevent: delta\ndata: {"delta":"lo"}\n\nevent: done\ndata: {"reply":"Hello"}\n\n'])).toEqual([
      { event: 'delta', data: '{"delta":"Hel"}', id: '' },
      { event: 'delta', data: '{"delta":"lo"}', id: '' },
      { event: 'done', data: '{"reply":"Hello"}', id: '' },
    ]);
  });

  it('copes with events split anywhere across chunks, CRLF included', () => {
    const text = 'event: delta\r\ndata: one\r\n\r\nevent: delta\r\ndata: two\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      expect(parse([text.slice(0, cut), text.slice(cut)]).map((e) => e.data)).toEqual(['one', 'two']);
    }
    expect(parse(text.split('')).map((e) => e.data)).toEqual(['one', 'two']);
  });

  it('joins multi-line data, skips comments, and accepts CR line ends', () => {
    expect(parse([': keep-alive\n\ndata: line 1\ndata: line 2\n\n', 'data:no space\r\r'])).toEqual([
      { event: 'message', data: 'line 1\nline 2', id: '' },
      { event: 'message', data: 'no space', id: '' },
    ]);
  });

  it('keeps only the first space after the colon, and remembers ids', () => {
    expect(parse(['id: 7\ndata:  two spaces\n\n'])).toEqual([{ event: 'message', data: ' two spaces', id: '7' }]);
  });

  it('ignores events without data and unknown fields', () => {
    expect(parse(['event: ping\n\nretry: 1000\nfoo: bar\ndata: x\n\n'])).toEqual([{ event: 'message', data: 'x', id: '' }]);
  });

  it('still delivers a last event whose blank line never came', () => {
    expect(parse(['event: done\ndata: {"reply":"ok"}'])).toEqual([{ event: 'done', data: '{"reply":"ok"}', id: '' }]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: héllo 👋\n\n');
    const events: SseEvent[] = [];
    for await (const e of readSse(streamOf([bytes.slice(0, 8), bytes.slice(8, 13), bytes.slice(13)]))) events.push(e);
    expect(events.map((e) => e.data)).toEqual(['héllo 👋']);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('data: first\n\n'));
      },
    });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const e of readSse(stream, controller.signal)) {
          seen.push(e.data);
          controller.abort();
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toEqual(['first']);
  });
});
