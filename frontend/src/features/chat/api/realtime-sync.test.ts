import { QueryClient } from '@tanstack/react-query';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { meQueryKey } from '@/lib/auth';
import type { ServerFrame } from '@/lib/realtime/frames';
import type { RealtimeClient } from '@/lib/realtime/realtime-client';
import { me, message, room } from '@/testing/factories';
import type { Room } from '@/types/models';
import { typingStore } from '../stores/typing-store';
import { emptyRoomMessages, type RoomMessages } from '../utils/messages-state';
import { ACK_TIMEOUT_MS, discardMessage, retryMessage, sendMessage } from './outbox';
import { chatKeys } from './query-keys';
import { createChatFrameHandler, type Receipts, syncCursors } from './realtime-sync';

vi.mock('@/lib/api-client', () => ({ api: {}, unwrap: vi.fn(), session: {}, tokenStore: {}, apiOrigin: 'http://chat.test' }));

function fakeClient(status: RealtimeClient['status'] = 'online') {
  const sent: unknown[] = [];
  const client = {
    status,
    send: vi.fn((frame: unknown) => {
      if (client.status !== 'online' && client.status !== 'syncing') return false;
      sent.push(frame);
      return true;
    }),
  };
  return { client: client as unknown as RealtimeClient & { status: RealtimeClient['status'] }, sent, raw: client };
}

let qc: QueryClient;
let fake: ReturnType<typeof fakeClient>;
let handle: (frame: ServerFrame) => void;

const rooms = () => qc.getQueryData<Room[]>(chatKeys.rooms) ?? [];
const messagesOf = (roomId: number) => qc.getQueryData<RoomMessages>(chatKeys.messages(roomId));
const seqs = (roomId: number) => messagesOf(roomId)?.messages.map((m) => m.seq);

beforeEach(() => {
  qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  qc.setQueryData(meQueryKey, me(1));
  qc.setQueryData(chatKeys.rooms, [room(1, { last_message: message(1, 2, 101) }), room(2, { last_message: message(2, 1, 102) })]);
  qc.setQueryData<RoomMessages>(chatKeys.messages(1), { ...emptyRoomMessages(), messages: [message(1, 1, 1), message(1, 2, 101)] });
  fake = fakeClient();
  handle = createChatFrameHandler(qc, () => fake.client);
});

afterEach(() => {
  vi.useRealTimers();
  typingStore.clear();
  qc.clear();
});

describe('live messages', () => {
  it('are appended in seq order without duplicates', () => {
    handle({ type: 'message', message: message(1, 3, 101) });
    handle({ type: 'message', message: message(1, 3, 101) });
    handle({ type: 'message', message: message(1, 4, 101) });
    expect(seqs(1)).toEqual([1, 2, 3, 4]);
  });

  it('out of order are put in order', () => {
    handle({ type: 'message', message: message(1, 4, 101) });
    handle({ type: 'message', message: message(1, 3, 101) });
    expect(seqs(1)).toEqual([1, 2, 3, 4]);
  });

  it('move their room to the top and count as unread', () => {
    handle({ type: 'message', message: message(2, 2, 102, { created_at: '2026-03-01T00:00:00Z' }) });
    expect(rooms().map((r) => r.id)).toEqual([2, 1]);
    expect(rooms()[0].unread_count).toBe(1);
    expect(rooms()[0].last_message?.seq).toBe(2);
  });

  it('in a room not in the list make the list refetch', () => {
    const invalidate = vi.spyOn(qc, 'invalidateQueries');
    handle({ type: 'message', message: message(9, 1, 109) });
    expect(invalidate).toHaveBeenCalledWith({ queryKey: chatKeys.rooms, exact: true });
  });

  it('end the sender’s typing notice', () => {
    handle({ type: 'typing', room_id: 1, user_id: 101 });
    expect(typingStore.get(1)).toEqual([101]);
    handle({ type: 'message', message: message(1, 3, 101) });
    expect(typingStore.get(1)).toEqual([]);
  });

  it('ignore the user’s own typing echo', () => {
    handle({ type: 'typing', room_id: 1, user_id: 1 });
    expect(typingStore.get(1)).toEqual([]);
  });
});

describe('sending', () => {
  it('shows the message at once, and the ack replaces it with the stored one', () => {
    const pending = sendMessage(qc, fake.client, 1, 'hello');
    expect(messagesOf(1)?.pending).toMatchObject([{ client_id: pending.client_id, body: 'hello', status: 'sending' }]);
    expect(fake.sent).toEqual([{ type: 'send', room_id: 1, client_id: pending.client_id, body: 'hello' }]);

    handle({ type: 'ack', client_id: pending.client_id, message: message(1, 3, 1, { client_id: pending.client_id, body: 'hello' }) });
    expect(messagesOf(1)?.pending).toEqual([]);
    expect(seqs(1)).toEqual([1, 2, 3]);
    expect(rooms().find((r) => r.id === 1)?.last_message?.body).toBe('hello');
    expect(rooms().find((r) => r.id === 1)?.unread_count).toBe(0);
  });

  it('fails without an ack in time, and a retry re-sends with the SAME client_id', () => {
    vi.useFakeTimers();
    const pending = sendMessage(qc, fake.client, 1, 'are you there?');
    vi.advanceTimersByTime(ACK_TIMEOUT_MS + 1);
    expect(messagesOf(1)?.pending[0]).toMatchObject({ status: 'failed' });

    retryMessage(qc, fake.client, pending.client_id);
    expect(messagesOf(1)?.pending[0]).toMatchObject({ status: 'sending' });
    expect(fake.sent).toHaveLength(2);
    expect((fake.sent[1] as { client_id: string }).client_id).toBe(pending.client_id);

    // The server stored the first attempt after all: its copy confirms the message once.
    handle({ type: 'ack', client_id: pending.client_id, message: message(1, 3, 1, { client_id: pending.client_id }) });
    handle({ type: 'message', message: message(1, 3, 1, { client_id: pending.client_id }) });
    expect(messagesOf(1)?.pending).toEqual([]);
    expect(seqs(1)).toEqual([1, 2, 3]);
    vi.advanceTimersByTime(ACK_TIMEOUT_MS * 2);
    expect(messagesOf(1)?.pending).toEqual([]);
  });

  it('marks a refused message failed with the server’s reason', () => {
    const pending = sendMessage(qc, fake.client, 1, 'x');
    handle({ type: 'error', code: 'forbidden', message: 'you cannot write here', client_id: pending.client_id });
    expect(messagesOf(1)?.pending[0]).toMatchObject({ status: 'failed', error: 'you cannot write here' });
    discardMessage(qc, 1, pending.client_id);
    expect(messagesOf(1)?.pending).toEqual([]);
  });

  it('queues while disconnected and sends after the resync', () => {
    fake.raw.status = 'connecting';
    const pending = sendMessage(qc, fake.client, 1, 'written offline');
    expect(messagesOf(1)?.pending[0]).toMatchObject({ status: 'queued' });
    expect(fake.sent).toEqual([]);

    fake.raw.status = 'online';
    handle({ type: 'synced', cursors: { '1': 2 }, has_more: [] });
    expect(fake.sent).toEqual([{ type: 'send', room_id: 1, client_id: pending.client_id, body: 'written offline' }]);
    expect(messagesOf(1)?.pending[0]).toMatchObject({ status: 'sending' });
  });

  it('is confirmed by the resync when the ack was lost with the connection', () => {
    const pending = sendMessage(qc, fake.client, 1, 'lost ack');
    handle({ type: 'message', message: message(1, 3, 1, { client_id: pending.client_id, body: 'lost ack' }) });
    expect(messagesOf(1)?.pending).toEqual([]);
    expect(seqs(1)).toEqual([1, 2, 3]);
  });
});

describe('resync', () => {
  it('resumes each loaded room from the last seq held without a gap', () => {
    qc.setQueryData<RoomMessages>(chatKeys.messages(2), { ...emptyRoomMessages(), messages: [message(2, 7, 102), message(2, 8, 102), message(2, 10, 102)] });
    expect(syncCursors(qc)).toEqual({ '1': 2, '2': 8 });
  });

  it('after synced, refetches the rooms with more to fetch and the room list', () => {
    const refetch = vi.spyOn(qc, 'refetchQueries').mockResolvedValue();
    const invalidate = vi.spyOn(qc, 'invalidateQueries');
    handle({ type: 'synced', cursors: { '1': 2 }, has_more: [1] });
    expect(refetch).toHaveBeenCalledWith({ queryKey: chatKeys.messages(1), exact: true });
    expect(invalidate).toHaveBeenCalledWith({ queryKey: chatKeys.rooms, exact: true });
  });

  it('fills a gap left by a live message through history', () => {
    const refetch = vi.spyOn(qc, 'refetchQueries').mockResolvedValue();
    handle({ type: 'message', message: message(1, 5, 101) });
    expect(refetch).toHaveBeenCalledWith({ queryKey: chatKeys.messages(1), exact: true });
  });
});

describe('rooms, reads and presence', () => {
  it('upserts rooms and removes the ones left elsewhere', () => {
    handle({ type: 'room', room: room(3, { kind: 'group', name: 'Trip', last_message: message(3, 1, 103, { created_at: '2026-05-01T00:00:00Z' }) }) });
    expect(rooms().map((r) => r.id)).toEqual([3, 1, 2]);
    handle({ type: 'room', room: room(3, { kind: 'group', name: 'Trip!', last_message: message(3, 1, 103, { created_at: '2026-05-01T00:00:00Z' }) }) });
    expect(rooms().filter((r) => r.id === 3).map((r) => r.name)).toEqual(['Trip!']);
    handle({ type: 'room_left', room_id: 1 });
    expect(rooms().map((r) => r.id)).toEqual([3, 2]);
    expect(messagesOf(1)).toBeUndefined();
  });

  it('clears unread when the user read the room on another device', () => {
    handle({ type: 'message', message: message(1, 3, 101) });
    expect(rooms().find((r) => r.id === 1)?.unread_count).toBe(1);
    handle({ type: 'read', room_id: 1, user_id: 1, seq: 3 });
    expect(rooms().find((r) => r.id === 1)).toMatchObject({ unread_count: 0, last_read_seq: 3 });
  });

  it('keeps other members’ read receipts', () => {
    handle({ type: 'read', room_id: 1, user_id: 101, seq: 2 });
    handle({ type: 'read', room_id: 1, user_id: 101, seq: 1 });
    expect(qc.getQueryData<Receipts>(chatKeys.receipts(1))).toEqual({ 101: 2 });
  });

  it('updates presence of room members', () => {
    handle({ type: 'presence', user_id: 101, online: true });
    expect(rooms().find((r) => r.id === 1)?.members.find((m) => m.id === 101)?.online).toBe(true);
  });
});
