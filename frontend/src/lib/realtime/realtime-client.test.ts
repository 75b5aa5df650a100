import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeWebSocket } from '@/testing/fake-websocket';
import { RealtimeClient, type RealtimeClientOptions } from './realtime-client';

let tokens = 0;
let cursors: Record<string, number> = {};
let client: RealtimeClient | null = null;

function start(options: Partial<RealtimeClientOptions> = {}) {
  client = new RealtimeClient({
    url: async () => `ws://chat.test/ws/?token=t${++tokens}`,
    cursors: () => cursors,
    WebSocket: FakeWebSocket,
    minReconnectionDelay: 5,
    maxReconnectionDelay: 20,
    ...options,
  });
  client.start();
  return client;
}

async function nextSocket(count: number): Promise<FakeWebSocket> {
  await vi.waitFor(() => expect(FakeWebSocket.instances.length).toBe(count));
  return FakeWebSocket.latest();
}

beforeEach(() => {
  FakeWebSocket.reset();
  tokens = 0;
  cursors = {};
});

afterEach(() => {
  client?.stop();
  client = null;
});

describe('RealtimeClient', () => {
  it('syncs from the cached cursors on connect and is online once synced', async () => {
    cursors = { '3': 41, '7': 0 };
    const c = start();
    const socket = await nextSocket(1);
    expect(socket.url).toBe('ws://chat.test/ws/?token=t1');
    expect(c.status).toBe('connecting');
    socket.open();
    expect(c.status).toBe('syncing');
    expect(socket.frames()).toEqual([{ type: 'sync', cursors: { '3': 41, '7': 0 } }]);
    socket.receive({ type: 'synced', cursors: { '3': 45 }, has_more: [] });
    expect(c.status).toBe('online');
  });

  it('reconnects after a drop with a fresh token and resyncs from the cursors of that moment', async () => {
    const c = start();
    const first = await nextSocket(1);
    first.open();
    first.receive({ type: 'synced', cursors: {}, has_more: [] });
    cursors = { '3': 50 };
    first.drop(4000, 'too slow: reconnect and sync');
    expect(c.status).toBe('connecting');

    const second = await nextSocket(2);
    expect(second.url).toBe('ws://chat.test/ws/?token=t2');
    second.open();
    expect(second.frames()).toEqual([{ type: 'sync', cursors: { '3': 50 } }]);
  });

  it('passes every frame to listeners, in order', async () => {
    const c = start();
    const seen: string[] = [];
    c.onFrame((frame) => seen.push(frame.type === 'message' ? `m${frame.message.seq}` : frame.type));
    const socket = await nextSocket(1);
    socket.open();
    socket.receive({ type: 'message', message: { seq: 1 } });
    socket.receive({ type: 'message', message: { seq: 2 } });
    socket.receive({ type: 'synced', cursors: {}, has_more: [] });
    socket.dispatchEvent(new MessageEvent('message', { data: 'not json' }));
    socket.receive({ type: 'presence', user_id: 2, online: true });
    expect(seen).toEqual(['m1', 'm2', 'synced', 'presence']);
  });

  it('stops and reports a revoked session (close 1008) instead of reconnecting', async () => {
    const onRevoked = vi.fn();
    const c = start({ onRevoked });
    const socket = await nextSocket(1);
    socket.open();
    socket.drop(1008, 'session revoked');
    expect(onRevoked).toHaveBeenCalledTimes(1);
    expect(c.status).toBe('offline');
    await new Promise((r) => setTimeout(r, 50));
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('reports attempts that fail before opening, so the session can be checked', async () => {
    const onConnectFailure = vi.fn();
    start({ onConnectFailure });
    const socket = await nextSocket(1);
    socket.drop(1006);
    expect(onConnectFailure).toHaveBeenCalledTimes(1);
    await nextSocket(2);
  });

  it('sends nothing while disconnected (no stale frames queued)', async () => {
    const c = start();
    await nextSocket(1);
    expect(c.send({ type: 'typing', room_id: 1 })).toBe(false);
    FakeWebSocket.latest().open();
    expect(c.send({ type: 'typing', room_id: 1 })).toBe(true);
    expect(FakeWebSocket.latest().frames().map((f) => f.type)).toEqual(['sync', 'typing']);
  });

  it('reconnects when a ping gets no answer in time', async () => {
    const c = start({ pingIntervalMs: 20, pongTimeoutMs: 20 });
    const socket = await nextSocket(1);
    socket.open();
    socket.receive({ type: 'synced', cursors: {}, has_more: [] });
    await vi.waitFor(() => expect(socket.frames().some((f) => f.type === 'ping')).toBe(true));
    const next = await nextSocket(2);
    expect(c.status).toBe('connecting');
    next.open();
    expect(next.frames()[0].type).toBe('sync');
  });

  it('keeps the connection while pings are answered', async () => {
    start({ pingIntervalMs: 15, pongTimeoutMs: 30 });
    const socket = await nextSocket(1);
    socket.open();
    const answer = setInterval(() => {
      if (socket.frames().some((f) => f.type === 'ping')) socket.receive({ type: 'pong' });
    }, 5);
    await new Promise((r) => setTimeout(r, 120));
    clearInterval(answer);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('drops the connection when the browser goes offline and comes back when it is online', async () => {
    const c = start({ minReconnectionDelay: 10_000, maxReconnectionDelay: 10_000 });
    const socket = await nextSocket(1);
    socket.open();
    window.dispatchEvent(new Event('offline'));
    expect(c.status).toBe('connecting');
    const retry = await nextSocket(2);
    retry.drop(1006);
    // The next attempt would wait 10 s; coming back online skips the wait.
    window.dispatchEvent(new Event('online'));
    const back = await nextSocket(3);
    back.open();
    expect(c.status).toBe('syncing');
  });

  it('closes for good on stop()', async () => {
    const c = start();
    const socket = await nextSocket(1);
    socket.open();
    c.stop();
    expect(socket.readyState).toBe(FakeWebSocket.CLOSED);
    expect(c.status).toBe('offline');
    await new Promise((r) => setTimeout(r, 50));
    expect(FakeWebSocket.instances).toHaveLength(1);
  });
});
