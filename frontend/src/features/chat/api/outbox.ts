/**
 * Sending messages: each is shown at once as pending, goes out over the WebSocket with a
 * client_id, and is replaced by the stored message when its ack (or the message itself, after
 * a resync) comes back. Written while disconnected, it waits and goes out after `synced`; an
 * ack that does not come in time or an error marks it failed, and a retry re-sends it with the
 * SAME client_id, so the server stores it once whatever happened to the first attempt.
 */
import type { QueryClient } from '@tanstack/react-query';
import type { RealtimeClient } from '@/lib/realtime/realtime-client';
import { addPending, type PendingMessage, removePending, type RoomMessages, updatePending } from '../utils/messages-state';
import { chatKeys } from './query-keys';

export const ACK_TIMEOUT_MS = 10_000;
export const MAX_BODY_LENGTH = 4000;

const timers = new Map<string, ReturnType<typeof setTimeout>>();

function newClientId(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function update(queryClient: QueryClient, roomId: number, fn: (state: RoomMessages) => RoomMessages): void {
  queryClient.setQueryData<RoomMessages>(chatKeys.messages(roomId), (state) => (state ? fn(state) : state));
}

/** Stops waiting for an ack (it came, or the message was confirmed by other means). */
export function settle(clientId: string): void {
  const timer = timers.get(clientId);
  if (timer !== undefined) clearTimeout(timer);
  timers.delete(clientId);
}

function transmit(queryClient: QueryClient, client: RealtimeClient | null, pending: PendingMessage): void {
  settle(pending.client_id);
  const sent =
    client?.status === 'online' &&
    client.send({ type: 'send', room_id: pending.room_id, client_id: pending.client_id, body: pending.body });
  if (!sent) {
    update(queryClient, pending.room_id, (s) => updatePending(s, pending.client_id, { status: 'queued', error: undefined }));
    return;
  }
  update(queryClient, pending.room_id, (s) => updatePending(s, pending.client_id, { status: 'sending', error: undefined }));
  timers.set(
    pending.client_id,
    setTimeout(() => {
      timers.delete(pending.client_id);
      failMessage(queryClient, pending.room_id, pending.client_id, 'Not delivered.');
    }, ACK_TIMEOUT_MS),
  );
}

export function sendMessage(queryClient: QueryClient, client: RealtimeClient | null, roomId: number, body: string): PendingMessage {
  const pending: PendingMessage = {
    client_id: newClientId(),
    room_id: roomId,
    body,
    created_at: new Date().toISOString(),
    status: 'queued',
  };
  update(queryClient, roomId, (s) => addPending(s, pending));
  transmit(queryClient, client, pending);
  return pending;
}

function findPending(queryClient: QueryClient, clientId: string): PendingMessage | undefined {
  for (const [, state] of queryClient.getQueriesData<RoomMessages>({ queryKey: chatKeys.allMessages })) {
    const found = state?.pending.find((p) => p.client_id === clientId);
    if (found) return found;
  }
  return undefined;
}

export function retryMessage(queryClient: QueryClient, client: RealtimeClient | null, clientId: string): void {
  const pending = findPending(queryClient, clientId);
  if (pending) transmit(queryClient, client, pending);
}

export function discardMessage(queryClient: QueryClient, roomId: number, clientId: string): void {
  settle(clientId);
  update(queryClient, roomId, (s) => removePending(s, clientId));
}

/** The server refused a send (an `error` frame with its client_id), or no ack came. */
export function failMessage(queryClient: QueryClient, roomId: number | undefined, clientId: string, reason: string): void {
  settle(clientId);
  const room = roomId ?? findPending(queryClient, clientId)?.room_id;
  if (room === undefined) return;
  update(queryClient, room, (s) => updatePending(s, clientId, { status: 'failed', error: reason }));
}

/** After `synced`: sends what waited for the connection, and re-sends what may have been lost with it. */
export function flushOutbox(queryClient: QueryClient, client: RealtimeClient | null): void {
  for (const [, state] of queryClient.getQueriesData<RoomMessages>({ queryKey: chatKeys.allMessages })) {
    for (const pending of state?.pending ?? []) {
      if (pending.status !== 'failed') transmit(queryClient, client, pending);
    }
  }
}
