/**
 * The WebSocket frames of `/ws/`, typed from the generated OpenAPI schemas (`ServerFrame` and
 * `ClientFrame` in ../openapi.yaml, generated into `@/types/api` by `npm run gen:api`).
 */
import type { components } from '@/types/api';

/** Frames the server sends on `/ws/`. */
export type ServerFrame = components['schemas']['ServerFrame'];

/** Frames the client sends on `/ws/`. */
export type ClientFrame = components['schemas']['ClientFrame'];

export type ServerFrameType = ServerFrame['type'];
export type ClientFrameType = ClientFrame['type'];

/** The server frame with the given `type`, e.g. `ServerFrameOf<'message'>`. */
export type ServerFrameOf<T extends ServerFrameType> = Extract<ServerFrame, { type: T }>;

/** The client frame with the given `type`, e.g. `ClientFrameOf<'send'>`. */
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { type: T }>;

/**
 * Every server frame type. A record keyed by the generated union, so a frame type added to (or
 * removed from) the schema fails the build here until the parser knows about it.
 */
const SERVER_TYPES: Record<ServerFrameType, true> = {
  ack: true,
  message: true,
  typing: true,
  read: true,
  presence: true,
  room: true,
  room_left: true,
  synced: true,
  error: true,
  pong: true,
};

function isServerFrameType(value: unknown): value is ServerFrameType {
  return typeof value === 'string' && Object.hasOwn(SERVER_TYPES, value);
}

/** Parses a text frame; anything that is not a known server frame gives null. */
export function parseServerFrame(text: string): ServerFrame | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && isServerFrameType((value as { type?: unknown }).type)) {
      return value as ServerFrame;
    }
  } catch {
    // Not JSON: ignore.
  }
  return null;
}
