/** The room list as pure functions: newest activity first, with unread counts and presence. */
import type { Message, Room } from '@/types/models';

export function roomActivity(room: Room): string {
  return room.last_message?.created_at ?? room.created_at;
}

export function sortRooms(rooms: Room[]): Room[] {
  return [...rooms].sort((a, b) => {
    const byTime = Date.parse(roomActivity(b)) - Date.parse(roomActivity(a));
    return byTime !== 0 ? byTime : b.id - a.id;
  });
}

function newer(a: Message | null | undefined, b: Message | null | undefined): Message | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return b.seq >= a.seq ? b : a;
}

/** Adds or replaces a room (a `room` frame, a created group); the newest last message wins. */
export function upsertRoom(rooms: Room[], room: Room): Room[] {
  const existing = rooms.find((r) => r.id === room.id);
  if (!existing) return sortRooms([...rooms, room]);
  const merged: Room = { ...room, last_message: newer(existing.last_message, room.last_message) };
  return sortRooms(rooms.map((r) => (r.id === room.id ? merged : r)));
}

export function removeRoom(rooms: Room[], roomId: number): Room[] {
  return rooms.filter((r) => r.id !== roomId);
}

/**
 * Merges a fresh room list from the server with the cache: a live message the response
 * predates is kept, and the server's unread counts and members win.
 */
export function mergeFetchedRooms(cached: Room[] | undefined, fetched: Room[]): Room[] {
  if (!cached) return sortRooms(fetched);
  const byId = new Map(cached.map((r) => [r.id, r]));
  return sortRooms(
    fetched.map((room) => {
      const old = byId.get(room.id);
      const last = newer(room.last_message, old?.last_message);
      return last === room.last_message ? room : { ...room, last_message: last };
    }),
  );
}

/**
 * A new message: it becomes its room's last message, the room moves to the top, and a
 * message from someone else above the read receipt counts as unread. `found` is false when
 * the room is not in the list (the caller then refetches the list).
 */
export function applyMessageToRooms(rooms: Room[], message: Message, meId: number | undefined): { rooms: Room[]; found: boolean } {
  const room = rooms.find((r) => r.id === message.room_id);
  if (!room) return { rooms, found: false };
  const lastSeq = room.last_message?.seq ?? 0;
  if (message.seq < lastSeq) return { rooms, found: true };
  if (message.seq === lastSeq) {
    // The same message again (ack and sync, say): refresh it without counting it twice.
    return { rooms: rooms.map((r) => (r.id === room.id ? { ...r, last_message: message } : r)), found: true };
  }
  const fromOther = message.sender.id !== meId;
  const unread = fromOther && message.seq > room.last_read_seq ? room.unread_count + 1 : room.unread_count;
  const next: Room = { ...room, last_message: message, unread_count: unread };
  return { rooms: sortRooms(rooms.map((r) => (r.id === room.id ? next : r))), found: true };
}

/**
 * The user read a room up to `seq` (here or on another device). `exact` is false when the
 * new unread count cannot be known locally (read up to a message below the last one).
 */
export function markRoomRead(rooms: Room[], roomId: number, seq: number): { rooms: Room[]; exact: boolean } {
  const room = rooms.find((r) => r.id === roomId);
  if (!room || seq <= room.last_read_seq) return { rooms, exact: true };
  const caughtUp = seq >= (room.last_message?.seq ?? 0);
  const next: Room = { ...room, last_read_seq: seq, unread_count: caughtUp ? 0 : room.unread_count };
  return { rooms: rooms.map((r) => (r.id === roomId ? next : r)), exact: caughtUp };
}

/** A friend came online or went offline: update them wherever they appear in the list. */
export function applyPresenceToRooms(rooms: Room[], userId: number, online: boolean): Room[] {
  let changed = false;
  const next = rooms.map((room) => {
    const touches = room.members.some((m) => m.id === userId && m.online !== online) || (room.last_message?.sender.id === userId && room.last_message.sender.online !== online);
    if (!touches) return room;
    changed = true;
    return {
      ...room,
      members: room.members.map((m) => (m.id === userId ? { ...m, online } : m)),
      last_message: room.last_message && room.last_message.sender.id === userId ? { ...room.last_message, sender: { ...room.last_message.sender, online } } : room.last_message,
    };
  });
  return changed ? next : rooms;
}

/** The other member of a private room. */
export function otherMember(room: Room, meId: number | undefined) {
  return room.members.find((m) => m.id !== meId) ?? room.members[0];
}
