import type { TokenPair } from '@/types/models';
import { ApiError, apiErrorFromResponse, isApiError, networkError } from './api-error';
import { expiresWithin } from './jwt';
import type { TokenStore } from './token-store';

/** The part of the Web Locks API the session uses (absent in old browsers and in jsdom). */
export interface LockLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface SessionOptions {
  store: TokenStore;
  /** Origin of the API, e.g. `window.location.origin`. */
  baseUrl: string;
  fetch?: (request: Request) => Promise<Response>;
  /** Serialises refreshes across tabs; defaults to `navigator.locks` when present. */
  locks?: LockLike | null;
  /** Refresh an access token this many seconds before it expires. */
  refreshMarginSeconds?: number;
}

export type ExpiredListener = () => void;

export function sessionExpiredError(): ApiError {
  return new ApiError(401, 'not_authenticated', 'Your session has ended. Please log in again.');
}

export interface Session {
  /** A usable access token, refreshed first when it is about to expire; null when logged out. */
  accessToken(): Promise<string | null>;
  /**
   * Exchanges the refresh token for a new pair. Concurrent callers share one request (refresh
   * tokens are single-use: presenting one twice revokes the session). `staleAccess` is the
   * access token the caller found wanting: if the stored one already differs, another request
   * (or tab) refreshed meanwhile and that token is returned without a new exchange.
   */
  refresh(staleAccess: string | null): Promise<string>;
  /** `fetch` with the bearer token, which refreshes once and retries on `not_authenticated`. */
  authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Forgets the tokens and tells listeners the session ended on its own (not a logout). */
  expire(): void;
  onExpired(listener: ExpiredListener): () => void;
}

export function createSession(options: SessionOptions): Session {
  const { store, baseUrl } = options;
  const doFetch = options.fetch ?? ((request: Request) => fetch(request));
  const margin = options.refreshMarginSeconds ?? 30;
  const locks: LockLike | null =
    options.locks !== undefined
      ? options.locks
      : typeof navigator !== 'undefined' && 'locks' in navigator && navigator.locks
        ? (navigator.locks as unknown as LockLike)
        : null;
  const expiredListeners = new Set<ExpiredListener>();
  let inflight: Promise<string> | null = null;

  function expire(): void {
    const hadSession = store.get() !== null;
    store.set(null);
    if (hadSession) for (const listener of [...expiredListeners]) listener();
  }

  async function exchange(staleAccess: string | null): Promise<string> {
    const current = store.get();
    if (!current) throw sessionExpiredError();
    // Someone else (this tab or another) rotated the pair since the caller looked.
    if (staleAccess !== null && current.access !== staleAccess && !expiresWithin(current.access, margin)) {
      return current.access;
    }
    let response: Response;
    try {
      response = await doFetch(
        new Request(`${baseUrl}/api/account/token/refresh/`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh: current.refresh }),
        }),
      );
    } catch (cause) {
      throw networkError(cause);
    }
    if (response.ok) {
      const pair = (await response.json()) as TokenPair;
      store.set(pair);
      return pair.access;
    }
    const error = await apiErrorFromResponse(response);
    if (response.status === 401) {
      // A tab without Web Locks may have rotated the pair while this request was out.
      const now = store.get();
      if (now && now.refresh !== current.refresh) return now.access;
      expire();
      throw sessionExpiredError();
    }
    // Rate limited, server or proxy trouble: the session itself may be fine; keep it.
    throw error;
  }

  function refresh(staleAccess: string | null): Promise<string> {
    if (inflight) return inflight;
    const run = () => exchange(staleAccess);
    inflight = (locks ? locks.request('chat-token-refresh', run) : run()).finally(() => {
      inflight = null;
    });
    return inflight;
  }

  async function accessToken(): Promise<string | null> {
    const current = store.get();
    if (!current) return null;
    if (expiresWithin(current.access, margin)) return refresh(current.access);
    return current.access;
  }

  async function send(request: Request, token: string | null): Promise<Response> {
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    try {
      return await doFetch(request);
    } catch (cause) {
      if (cause instanceof Error && cause.name === 'AbortError') throw cause;
      throw networkError(cause);
    }
  }

  async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const retry = request.clone();
    const token = await accessToken();
    const response = await send(request, token);
    if (response.status !== 401 || token === null) return response;
    const code = await response
      .clone()
      .json()
      .then((body: unknown) => (body as { error?: { code?: string } } | null)?.error?.code)
      .catch(() => undefined);
    if (code !== 'not_authenticated') return response;
    let fresh: string;
    try {
      fresh = await refresh(token);
    } catch (error) {
      if (isApiError(error) && error.code === 'not_authenticated') return response;
      throw error;
    }
    const second = await send(retry, fresh);
    if (second.status === 401) expire();
    return second;
  }

  return {
    accessToken,
    refresh,
    authFetch,
    expire,
    onExpired(listener) {
      expiredListeners.add(listener);
      return () => expiredListeners.delete(listener);
    },
  };
}
