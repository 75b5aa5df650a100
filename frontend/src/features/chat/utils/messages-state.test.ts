import { describe, expect, it } from 'vitest';
import { message } from '@/testing/factories';
import { addPending, applyIncoming, contiguousLastSeq, emptyRoomMessages, hasGap, mergeMessages, type PendingMessage, prependOlder } from './messages-state';

const seqs = (list: { seq: number }[]) => list.map((m) => m.seq);

describe('mergeMessages', () => {
  it('appends new messages in seq order', () => {
    expect(seqs(mergeMessages([message(1, 1, 2), message(1, 2, 2)], [message(1, 3, 2)]))).toEqual([1, 2, 3]);
  });

  it('orders messages that arrive out of order and drops duplicates', () => {
    const list = mergeMessages([message(1, 1, 2), message(1, 4, 2)], [message(1, 3, 2), message(1, 2, 2), message(1, 4, 2), message(1, 3, 2)]);
    expect(seqs(list)).toEqual([1, 2, 3, 4]);
  });

  it('lets a later copy of a message replace the earlier one', () => {
    const edited = message(1, 2, 2, { body: 'edited', edited_at: '2026-01-01T13:00:00Z' });
    const list = mergeMessages([message(1, 1, 2), message(1, 2, 2)], [edited]);
    expect(list[1].body).toBe('edited');
    expect(list).toHaveLength(2);
  });

  it('returns the same array when nothing comes in', () => {
    const list = [message(1, 1, 2)];
    expect(mergeMessages(list, [])).toBe(list);
  });
});

describe('pending messages', () => {
  const pending = (clientId: string): PendingMessage => ({ client_id: clientId, room_id: 1, body: 'hi', created_at: '2026-01-01T12:00:00Z', status: 'sending' });

  it('are replaced by the stored message with the same client_id from the same sender', () => {
    let state = addPending(addPending(emptyRoomMessages(), pending('a')), pending('b'));
    state = applyIncoming(state, [message(1, 1, 1, { client_id: 'a' })], 1);
    expect(state.pending.map((p) => p.client_id)).toEqual(['b']);
    expect(seqs(state.messages)).toEqual([1]);
  });

  it('are not confirmed by someone else’s message that happens to share the client_id', () => {
    let state = addPending(emptyRoomMessages(), pending('a'));
    state = applyIncoming(state, [message(1, 1, 2, { client_id: 'a' })], 1);
    expect(state.pending).toHaveLength(1);
  });

  it('are added once per client_id', () => {
    const state = addPending(addPending(emptyRoomMessages(), pending('a')), pending('a'));
    expect(state.pending).toHaveLength(1);
  });
});

describe('cursors and gaps', () => {
  it('resume from the last seq held without a gap', () => {
    const state = { ...emptyRoomMessages(), messages: [message(1, 10, 2), message(1, 11, 2), message(1, 12, 2), message(1, 15, 2)] };
    expect(contiguousLastSeq(state)).toBe(12);
    expect(hasGap(state)).toBe(true);
    const filled = applyIncoming(state, [message(1, 13, 2), message(1, 14, 2)], 1);
    expect(contiguousLastSeq(filled)).toBe(15);
    expect(hasGap(filled)).toBe(false);
  });

  it('is 0 for a room without messages', () => {
    expect(contiguousLastSeq(emptyRoomMessages())).toBe(0);
  });

  it('keep older pages in front when history is loaded', () => {
    const state = { ...emptyRoomMessages(), messages: [message(1, 51, 2), message(1, 52, 2)], hasMoreBefore: true };
    const older = prependOlder(state, [message(1, 49, 2), message(1, 50, 2)], false);
    expect(seqs(older.messages)).toEqual([49, 50, 51, 52]);
    expect(older.hasMoreBefore).toBe(false);
  });
});
