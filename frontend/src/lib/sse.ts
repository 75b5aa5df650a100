/**
 * Server-sent events (text/event-stream) read from a fetch body, following the parsing rules
 * of the HTML standard: lines end in CRLF, LF or CR (a CRLF may be split across chunks),
 * `event:`/`data:`/`id:`/`retry:` fields, `:` comments, multi-line data joined by "\n", and an
 * event dispatched at each blank line.
 */

export interface SseEvent {
  /** `message` unless the event named itself. */
  event: string;
  data: string;
  id: string;
}

export class SseParser {
  private buffer = '';
  private pendingCr = false;
  private eventName = '';
  private dataLines: string[] = [];
  private hasData = false;
  private lastId = '';

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** Feeds decoded text; events complete in it are dispatched at once. */
  push(chunk: string): void {
    let text = chunk;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer[i];
      if (ch !== '\n' && ch !== '\r') continue;
      this.line(this.buffer.slice(start, i));
      if (ch === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          // The LF of a CRLF may come in the next chunk.
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /**
   * The stream ended. The standard drops an event whose blank line never came; this parser
   * dispatches it instead, so a server that omits the final blank line loses nothing.
   */
  end(): void {
    if (this.buffer !== '') this.line(this.buffer);
    this.buffer = '';
    this.pendingCr = false;
    this.dispatch();
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventName = value;
        break;
      case 'data':
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields: nothing to do for a one-shot stream.
        break;
    }
  }

  private dispatch(): void {
    if (this.hasData) {
      this.onEvent({ event: this.eventName || 'message', data: this.dataLines.join('\n'), id: this.lastId });
    }
    this.eventName = '';
    this.dataLines = [];
    this.hasData = false;
  }
}

/** Reads every event of a response body, in order. */
export async function* readSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const queue: SseEvent[] = [];
  const parser = new SseParser((event) => queue.push(event));
  const abort = () => {
    void reader.cancel().catch(() => undefined);
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw new DOMException('The stream was cancelled.', 'AbortError');
      const { done, value } = await reader.read();
      if (done) {
        parser.push(decoder.decode());
        parser.end();
        yield* queue.splice(0);
        return;
      }
      parser.push(decoder.decode(value, { stream: true }));
      yield* queue.splice(0);
    }
  } finally {
    signal?.removeEventListener('abort', abort);
    try {
      reader.releaseLock();
    } catch {
      // Already released by the cancellation.
    }
  }
}
