/**
 * The message cache of one room, as pure functions: confirmed messages ordered by `seq`
 * without duplicates, plus the user's own messages not yet acknowledged (optimistic).
 */
import type { Message } from '@/types/models';

export type PendingStatus = 'queued' | 'sending' | 'failed';

export interface PendingMessage {
  client_id: string;
  room_id: number;
  body: string;
  created_at: string;
  status: PendingStatus;
  error?: string;
}

export interface RoomMessages {
  /** Confirmed messages, ascending by seq, each seq once. */
  messages: Message[];
  /** The user's messages awaiting their ack, in the order they were written. */
  pending: PendingMessage[];
  /** Whether older messages exist below `messages[0]`. */
  hasMoreBefore: boolean;
}

export function emptyRoomMessages(): RoomMessages {
  return { messages: [], pending: [], hasMoreBefore: false };
}

/** Merges messages in by seq: ordered, no duplicates (a later copy replaces an earlier one). */
export function mergeMessages(current: Message[], incoming: Message[]): Message[] {
  if (incoming.length === 0) return current;
  const last = current[current.length - 1];
  // The common case: one or more new messages right after the last one.
  if (!last || incoming.every((m, i) => m.seq > (i === 0 ? last.seq : incoming[i - 1].seq))) {
    return last ? [...current, ...incoming] : [...incoming].sort((a, b) => a.seq - b.seq);
  }
  const bySeq = new Map<number, Message>();
  for (const m of current) bySeq.set(m.seq, m);
  for (const m of incoming) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Stores confirmed messages and drops the pending copies they confirm (same sender and
 * client_id). `meId` is the current user's id.
 */
export function applyIncoming(state: RoomMessages, incoming: Message[], meId: number | undefined): RoomMessages {
  if (incoming.length === 0) return state;
  const confirmed = new Set(incoming.filter((m) => meId === undefined || m.sender.id === meId).map((m) => m.client_id));
  const pending = state.pending.filter((p) => !confirmed.has(p.client_id));
  return {
    ...state,
    messages: mergeMessages(state.messages, incoming),
    pending: pending.length === state.pending.length ? state.pending : pending,
  };
}

export function prependOlder(state: RoomMessages, older: Message[], hasMoreBefore: boolean): RoomMessages {
  return { ...state, messages: mergeMessages(state.messages, older), hasMoreBefore };
}

export function addPending(state: RoomMessages, pending: PendingMessage): RoomMessages {
  if (state.pending.some((p) => p.client_id === pending.client_id)) return state;
  return { ...state, pending: [...state.pending, pending] };
}

export function updatePending(state: RoomMessages, clientId: string, patch: Partial<Pick<PendingMessage, 'status' | 'error'>>): RoomMessages {
  let changed = false;
  const pending = state.pending.map((p) => {
    if (p.client_id !== clientId) return p;
    changed = true;
    return { ...p, ...patch };
  });
  return changed ? { ...state, pending } : state;
}

export function removePending(state: RoomMessages, clientId: string): RoomMessages {
  const pending = state.pending.filter((p) => p.client_id !== clientId);
  return pending.length === state.pending.length ? state : { ...state, pending };
}

export function lastSeq(state: RoomMessages): number {
  return state.messages[state.messages.length - 1]?.seq ?? 0;
}

/**
 * The highest seq up to which the cache holds every message without a gap, counting from its
 * first message: the cursor to resume from (`sync`, or history with `after`).
 */
export function contiguousLastSeq(state: RoomMessages): number {
  const { messages } = state;
  if (messages.length === 0) return 0;
  let seq = messages[0].seq;
  for (let i = 1; i < messages.length; i++) {
    if (messages[i].seq !== seq + 1) break;
    seq = messages[i].seq;
  }
  return seq;
}

export function hasGap(state: RoomMessages): boolean {
  return contiguousLastSeq(state) < lastSeq(state);
}
