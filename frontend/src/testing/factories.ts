import type { Message, Room, User, UserPublic } from '@/types/models';

export function userPublic(id: number, username = `user${id}`, online = false): UserPublic {
  return { id, username, first_name: username, last_name: '', online };
}

export function me(id = 1): User {
  return { id, username: `user${id}`, first_name: `user${id}`, last_name: '', email: `u${id}@x.test`, bio: '', email_verified: true, date_joined: '2026-01-01T00:00:00Z' };
}

export function message(roomId: number, seq: number, senderId: number, extra: Partial<Message> = {}): Message {
  return {
    id: roomId * 1000 + seq,
    room_id: roomId,
    seq,
    sender: userPublic(senderId),
    body: `message ${seq}`,
    client_id: `c-${roomId}-${seq}`,
    created_at: new Date(Date.UTC(2026, 0, 1, 12, 0, seq)).toISOString(),
    edited_at: null,
    deleted: false,
    ...extra,
  };
}

export function room(id: number, extra: Partial<Room> = {}): Room {
  return {
    id,
    kind: 'private',
    name: `room${id}`,
    owner_id: null,
    members: [userPublic(1), userPublic(id + 100)],
    last_message: null,
    unread_count: 0,
    last_read_seq: 0,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, id)).toISOString(),
    ...extra,
  };
}
