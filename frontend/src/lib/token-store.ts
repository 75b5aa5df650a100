import type { StoredTokens } from '@/types/models';

type Listener = () => void;

/**
 * The session's token pair, kept in localStorage so it survives reloads and is shared by tabs.
 * `get()` always reads storage: another tab may have rotated the pair, and a stale refresh
 * token must never be sent (reusing one revokes the whole session).
 */
export class TokenStore {
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly storage: Storage,
    private readonly key = 'chat.session',
  ) {
    if (typeof window !== 'undefined') {
      window.addEventListener('storage', (event) => {
        if (event.key === this.key || event.key === null) this.emit();
      });
    }
  }

  get(): StoredTokens | null {
    const raw = this.raw();
    if (!raw) return null;
    try {
      const value: unknown = JSON.parse(raw);
      if (
        typeof value === 'object' &&
        value !== null &&
        typeof (value as StoredTokens).access === 'string' &&
        typeof (value as StoredTokens).refresh === 'string'
      ) {
        return { access: (value as StoredTokens).access, refresh: (value as StoredTokens).refresh };
      }
    } catch {
      // Corrupt entry: treat as logged out.
    }
    return null;
  }

  /** The stored JSON itself: a cheap, stable snapshot for React. */
  raw(): string | null {
    try {
      return this.storage.getItem(this.key);
    } catch {
      return null;
    }
  }

  set(pair: StoredTokens | null): void {
    try {
      if (pair) this.storage.setItem(this.key, JSON.stringify({ access: pair.access, refresh: pair.refresh }));
      else this.storage.removeItem(this.key);
    } catch {
      // Storage full or disabled: the session lasts as long as the page then.
    }
    this.emit();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
