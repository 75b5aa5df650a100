import type { Message, Room } from '@/types/models';

/** Frames the server sends on `/ws/` (see `ServerFrame` in openapi.yaml). */
export type ServerFrame =
  | { type: 'ack'; client_id: string; message: Message }
  | { type: 'message'; message: Message }
  | { type: 'typing'; room_id: number; user_id: number }
  | { type: 'read'; room_id: number; user_id: number; seq: number }
  | { type: 'presence'; user_id: number; online: boolean }
  | { type: 'room'; room: Room }
  | { type: 'room_left'; room_id: number }
  | { type: 'synced'; cursors: Record<string, number>; has_more: number[] }
  | { type: 'error'; code: string; message: string; client_id?: string | null }
  | { type: 'pong' };

/** Frames the client sends (see `ClientFrame` in openapi.yaml). */
export type ClientFrame =
  | { type: 'send'; room_id: number; client_id: string; body: string }
  | { type: 'typing'; room_id: number }
  | { type: 'read'; room_id: number; seq: number }
  | { type: 'sync'; cursors: Record<string, number> }
  | { type: 'ping' };

const SERVER_TYPES = new Set(['ack', 'message', 'typing', 'read', 'presence', 'room', 'room_left', 'synced', 'error', 'pong']);

/** Parses a text frame; anything that is not a known server frame gives null. */
export function parseServerFrame(text: string): ServerFrame | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && SERVER_TYPES.has((value as { type?: string }).type ?? '')) {
      return value as ServerFrame;
    }
  } catch {
    // Not JSON: ignore.
  }
  return null;
}
