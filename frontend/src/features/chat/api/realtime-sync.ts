/**
 * How the chat caches follow the WebSocket: every server frame updates the query cache, and
 * every (re)connect resumes from the highest seq held without a gap in each loaded room.
 */
import type { QueryClient } from '@tanstack/react-query';
import type { ServerFrame } from '@/lib/realtime/frames';
import type { RealtimeClient } from '@/lib/realtime/realtime-client';
import type { Message, Room } from '@/types/models';
import { typingStore } from '../stores/typing-store';
import { applyIncoming, contiguousLastSeq, hasGap, type RoomMessages } from '../utils/messages-state';
import { applyMessageToRooms, applyPresenceToRooms, markRoomRead, removeRoom, upsertRoom } from '../utils/rooms-state';
import { currentUserId } from './get-messages';
import { failMessage, flushOutbox, settle } from './outbox';
import { chatKeys } from './query-keys';

export type Receipts = Record<number, number>;

/** The `sync` cursors: for each room whose messages are loaded, the last seq held without a gap. */
export function syncCursors(queryClient: QueryClient): Record<string, number> {
  const cursors: Record<string, number> = {};
  for (const [key, state] of queryClient.getQueriesData<RoomMessages>({ queryKey: chatKeys.allMessages })) {
    const roomId = key[1];
    if (state && typeof roomId === 'number') cursors[String(roomId)] = contiguousLastSeq(state);
  }
  return cursors;
}

function refetchMessages(queryClient: QueryClient, roomId: number): void {
  void queryClient.refetchQueries({ queryKey: chatKeys.messages(roomId), exact: true });
}

/** Stores a confirmed message in its room's cache and in the room list. */
export function ingestMessage(queryClient: QueryClient, message: Message, client: RealtimeClient | null): void {
  const meId = currentUserId(queryClient);
  const key = chatKeys.messages(message.room_id);
  const state = queryClient.getQueryData<RoomMessages>(key);
  if (state) {
    const next = applyIncoming(state, [message], meId);
    queryClient.setQueryData(key, next);
    // A hole before this message: fetch it, unless a resync in progress will bring it.
    if (hasGap(next) && client?.status === 'online') refetchMessages(queryClient, message.room_id);
  }
  const rooms = queryClient.getQueryData<Room[]>(chatKeys.rooms);
  if (rooms) {
    const result = applyMessageToRooms(rooms, message, meId);
    if (result.found) queryClient.setQueryData(chatKeys.rooms, result.rooms);
    else void queryClient.invalidateQueries({ queryKey: chatKeys.rooms, exact: true });
  }
}

export function createChatFrameHandler(queryClient: QueryClient, getClient: () => RealtimeClient | null) {
  return (frame: ServerFrame): void => {
    const client = getClient();
    switch (frame.type) {
      case 'ack':
        settle(frame.client_id);
        ingestMessage(queryClient, frame.message, client);
        break;
      case 'message':
        if (frame.message.sender.id === currentUserId(queryClient)) settle(frame.message.client_id);
        typingStore.remove(frame.message.room_id, frame.message.sender.id);
        ingestMessage(queryClient, frame.message, client);
        break;
      case 'typing':
        if (frame.user_id !== currentUserId(queryClient)) typingStore.add(frame.room_id, frame.user_id);
        break;
      case 'read': {
        if (frame.user_id === currentUserId(queryClient)) {
          // Read on another device (or the echo of our own receipt).
          const rooms = queryClient.getQueryData<Room[]>(chatKeys.rooms);
          if (!rooms) break;
          const result = markRoomRead(rooms, frame.room_id, frame.seq);
          queryClient.setQueryData(chatKeys.rooms, result.rooms);
          if (!result.exact) void queryClient.invalidateQueries({ queryKey: chatKeys.rooms, exact: true });
        } else {
          queryClient.setQueryData<Receipts>(chatKeys.receipts(frame.room_id), (receipts = {}) =>
            (receipts[frame.user_id] ?? 0) >= frame.seq ? receipts : { ...receipts, [frame.user_id]: frame.seq },
          );
        }
        break;
      }
      case 'presence':
        queryClient.setQueryData<Room[]>(chatKeys.rooms, (rooms) => (rooms ? applyPresenceToRooms(rooms, frame.user_id, frame.online) : rooms));
        break;
      case 'room':
        if (queryClient.getQueryData(chatKeys.rooms)) {
          queryClient.setQueryData<Room[]>(chatKeys.rooms, (rooms) => (rooms ? upsertRoom(rooms, frame.room) : rooms));
        }
        break;
      case 'room_left':
        queryClient.setQueryData<Room[]>(chatKeys.rooms, (rooms) => (rooms ? removeRoom(rooms, frame.room_id) : rooms));
        queryClient.removeQueries({ queryKey: chatKeys.messages(frame.room_id), exact: true });
        break;
      case 'synced': {
        // More than the server sends in one sync, or a hole left: fetch through history.
        for (const [key, state] of queryClient.getQueriesData<RoomMessages>({ queryKey: chatKeys.allMessages })) {
          const roomId = key[1];
          if (typeof roomId !== 'number' || !state) continue;
          if (frame.has_more.includes(roomId) || hasGap(state)) refetchMessages(queryClient, roomId);
        }
        // Unread counts and rooms that changed while away come from the server.
        void queryClient.invalidateQueries({ queryKey: chatKeys.rooms, exact: true });
        flushOutbox(queryClient, client);
        break;
      }
      case 'error':
        if (frame.client_id) failMessage(queryClient, undefined, frame.client_id, frame.message);
        else console.warn('realtime error', frame.code, frame.message);
        break;
      case 'pong':
        break;
    }
  };
}
