import { describe, expect, it } from 'vitest';
import { message, room, userPublic } from '@/testing/factories';
import { applyMessageToRooms, applyPresenceToRooms, markRoomRead, mergeFetchedRooms, removeRoom, sortRooms, upsertRoom } from './rooms-state';

const ids = (rooms: { id: number }[]) => rooms.map((r) => r.id);

describe('room list', () => {
  it('is ordered by newest activity first', () => {
    const rooms = sortRooms([room(1, { last_message: message(1, 1, 2) }), room(2), room(3, { last_message: message(3, 9, 2) })]);
    expect(ids(rooms)).toEqual([3, 1, 2]);
  });

  it('moves a room to the top when a message arrives and counts it unread', () => {
    const rooms = sortRooms([room(1, { last_message: message(1, 5, 102) }), room(2, { last_message: message(2, 1, 102) })]);
    expect(ids(rooms)).toEqual([1, 2]);
    const later = message(2, 2, 102, { created_at: '2026-01-02T00:00:00Z' });
    const { rooms: next, found } = applyMessageToRooms(rooms, later, 1);
    expect(found).toBe(true);
    expect(ids(next)).toEqual([2, 1]);
    expect(next[0].last_message?.seq).toBe(2);
    expect(next[0].unread_count).toBe(1);
  });

  it('does not count the user’s own messages, nor the same message twice', () => {
    const rooms = [room(1)];
    const own = applyMessageToRooms(rooms, message(1, 1, 1), 1).rooms;
    expect(own[0].unread_count).toBe(0);
    const theirs = message(1, 2, 101);
    const once = applyMessageToRooms(own, theirs, 1).rooms;
    const twice = applyMessageToRooms(once, theirs, 1).rooms;
    expect(twice[0].unread_count).toBe(1);
    expect(twice[0].last_message?.seq).toBe(2);
  });

  it('ignores a message older than the last one', () => {
    const rooms = [room(1, { last_message: message(1, 9, 101), unread_count: 2, last_read_seq: 7 })];
    const next = applyMessageToRooms(rooms, message(1, 8, 101), 1).rooms;
    expect(next[0].last_message?.seq).toBe(9);
    expect(next[0].unread_count).toBe(2);
  });

  it('says when the room of a message is unknown', () => {
    expect(applyMessageToRooms([room(1)], message(5, 1, 101), 1).found).toBe(false);
  });

  it('adds or replaces a room, keeping the newer last message', () => {
    const rooms = [room(1, { last_message: message(1, 5, 101) }), room(2)];
    const added = upsertRoom(rooms, room(3, { last_message: message(3, 1, 101, { created_at: '2026-02-01T00:00:00Z' }) }));
    expect(ids(added)).toEqual([3, 1, 2]);
    const renamed = upsertRoom(added, room(1, { name: 'new name', last_message: message(1, 4, 101) }));
    expect(renamed.find((r) => r.id === 1)?.name).toBe('new name');
    expect(renamed.find((r) => r.id === 1)?.last_message?.seq).toBe(5);
    expect(ids(removeRoom(renamed, 3))).toEqual([1, 2]);
  });

  it('clears unread when read up to the last message, and says when it cannot know', () => {
    const rooms = [room(1, { last_message: message(1, 10, 101), unread_count: 3, last_read_seq: 7 })];
    const all = markRoomRead(rooms, 1, 10);
    expect(all.rooms[0].unread_count).toBe(0);
    expect(all.rooms[0].last_read_seq).toBe(10);
    expect(all.exact).toBe(true);
    const part = markRoomRead(rooms, 1, 8);
    expect(part.exact).toBe(false);
    expect(markRoomRead(rooms, 1, 5).rooms).toBe(rooms);
  });

  it('updates presence of members and last senders', () => {
    const rooms = [room(1, { members: [userPublic(1), userPublic(101)], last_message: message(1, 1, 101) }), room(2)];
    const next = applyPresenceToRooms(rooms, 101, true);
    expect(next[0].members[1].online).toBe(true);
    expect(next[0].last_message?.sender.online).toBe(true);
    expect(next[1]).toBe(rooms[1]);
    expect(applyPresenceToRooms(next, 101, true)).toBe(next);
  });

  it('keeps a live message that a refetched list predates', () => {
    const cached = [room(1, { last_message: message(1, 6, 101) })];
    const fetched = [room(1, { last_message: message(1, 5, 101), unread_count: 4 }), room(2)];
    const merged = mergeFetchedRooms(cached, fetched);
    expect(merged.find((r) => r.id === 1)?.last_message?.seq).toBe(6);
    expect(merged.find((r) => r.id === 1)?.unread_count).toBe(4);
    expect(ids(merged)).toContain(2);
  });
});
