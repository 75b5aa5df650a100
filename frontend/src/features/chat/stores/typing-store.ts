/**
 * Who is typing where: ephemeral, never stored by the server, so it lives here rather than in
 * the query cache. Each notice lasts a few seconds unless renewed.
 */
import { useSyncExternalStore } from 'react';

export const TYPING_TTL_MS = 4_000;

type Listener = () => void;

export class TypingStore {
  private readonly rooms = new Map<number, Map<number, ReturnType<typeof setTimeout>>>();
  private readonly snapshots = new Map<number, number[]>();
  private readonly listeners = new Set<Listener>();
  private static readonly EMPTY: number[] = [];

  add(roomId: number, userId: number, ttl = TYPING_TTL_MS): void {
    let users = this.rooms.get(roomId);
    if (!users) {
      users = new Map();
      this.rooms.set(roomId, users);
    }
    const existing = users.get(userId);
    if (existing) clearTimeout(existing);
    users.set(
      userId,
      setTimeout(() => this.remove(roomId, userId), ttl),
    );
    if (!existing) this.changed(roomId);
  }

  remove(roomId: number, userId: number): void {
    const users = this.rooms.get(roomId);
    const timer = users?.get(userId);
    if (!users || timer === undefined) return;
    clearTimeout(timer);
    users.delete(userId);
    if (users.size === 0) this.rooms.delete(roomId);
    this.changed(roomId);
  }

  clear(): void {
    for (const users of this.rooms.values()) for (const timer of users.values()) clearTimeout(timer);
    this.rooms.clear();
    this.snapshots.clear();
    this.emit();
  }

  /** The users typing in a room: the same array until it changes. */
  get(roomId: number): number[] {
    return this.snapshots.get(roomId) ?? TypingStore.EMPTY;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(roomId: number): void {
    const users = this.rooms.get(roomId);
    if (users && users.size > 0) this.snapshots.set(roomId, [...users.keys()]);
    else this.snapshots.delete(roomId);
    this.emit();
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

export const typingStore = new TypingStore();

export function useTypingUsers(roomId: number): number[] {
  return useSyncExternalStore(
    (listener) => typingStore.subscribe(listener),
    () => typingStore.get(roomId),
  );
}
