import { describe, expect, it, vi } from 'vitest';
import { fakeJwt, jsonResponse } from '@/testing/jwt';
import { createSession, type LockLike } from './session';
import { TokenStore } from './token-store';

const base = 'http://chat.test';
const unauthenticated = () => jsonResponse(401, { error: { code: 'not_authenticated', message: 'token expired' } });

function setup(options: { locks?: LockLike | null } = {}) {
  const store = new TokenStore(localStorage, 'test.session');
  const refreshes: string[] = [];
  let refreshReply: () => Promise<Response> | Response = () => {
    const pair = { access: fakeJwt(900), refresh: `r-${refreshes.length}` };
    return jsonResponse(200, pair);
  };
  const seen: Array<{ url: string; auth: string | null; body: string }> = [];
  let handler: (request: Request) => Response | Promise<Response> = () => jsonResponse(200, {});
  const fetch = vi.fn(async (request: Request) => {
    if (request.url.endsWith('/api/account/token/refresh/')) {
      const { refresh } = (await request.json()) as { refresh: string };
      refreshes.push(refresh);
      return refreshReply();
    }
    seen.push({ url: request.url, auth: request.headers.get('Authorization'), body: await request.clone().text() });
    return handler(request);
  });
  const session = createSession({ store, baseUrl: base, fetch, locks: options.locks ?? null });
  return {
    store,
    session,
    fetch,
    refreshes,
    seen,
    onRequest(fn: typeof handler) {
      handler = fn;
    },
    onRefresh(fn: typeof refreshReply) {
      refreshReply = fn;
    },
  };
}

describe('authFetch', () => {
  it('sends the bearer token', async () => {
    const t = setup();
    const access = fakeJwt(900);
    t.store.set({ access, refresh: 'r' });
    await t.session.authFetch(`${base}/api/contact/friends/`);
    expect(t.seen[0].auth).toBe(`Bearer ${access}`);
    expect(t.refreshes).toEqual([]);
  });

  it('shares ONE refresh between concurrent requests that hit an expired token, then retries each', async () => {
    const t = setup();
    const stale = fakeJwt(900, 'stale');
    t.store.set({ access: stale, refresh: 'r-old' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    t.onRefresh(async () => {
      await gate;
      return jsonResponse(200, { access: fakeJwt(900, 'fresh'), refresh: 'r-new' });
    });
    t.onRequest((request) => (request.headers.get('Authorization') === `Bearer ${stale}` ? unauthenticated() : jsonResponse(200, { ok: true })));

    const calls = [1, 2, 3, 4, 5].map((i) =>
      t.session.authFetch(`${base}/api/thing/${i}/`, { method: 'POST', body: JSON.stringify({ i }), headers: { 'Content-Type': 'application/json' } }),
    );
    await vi.waitFor(() => expect(t.refreshes.length).toBe(1));
    release();
    const responses = await Promise.all(calls);

    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(t.refreshes).toEqual(['r-old']);
    expect(t.store.get()?.refresh).toBe('r-new');
    // Each request was retried once, with its body, under the new token.
    const retries = t.seen.filter((s) => s.auth !== `Bearer ${stale}`);
    expect(retries.map((r) => JSON.parse(r.body).i).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('refreshes first, once, when the access token is about to expire', async () => {
    const t = setup();
    t.store.set({ access: fakeJwt(5), refresh: 'r-old' });
    await Promise.all([t.session.authFetch(`${base}/a/`), t.session.authFetch(`${base}/b/`), t.session.accessToken()]);
    expect(t.refreshes).toEqual(['r-old']);
    expect(t.seen.every((s) => s.auth === `Bearer ${t.store.get()?.access}`)).toBe(true);
  });

  it('does not refresh when another tab already rotated the tokens', async () => {
    const t = setup();
    const stale = fakeJwt(900, 'stale');
    t.store.set({ access: stale, refresh: 'r-old' });
    const rotated = fakeJwt(900, 'rotated');
    t.onRequest((request) => {
      if (request.headers.get('Authorization') === `Bearer ${stale}`) {
        // Meanwhile another tab refreshed and stored a new pair.
        t.store.set({ access: rotated, refresh: 'r-other-tab' });
        return unauthenticated();
      }
      return jsonResponse(200, {});
    });
    const response = await t.session.authFetch(`${base}/x/`);
    expect(response.status).toBe(200);
    expect(t.refreshes).toEqual([]);
    expect(t.seen[1].auth).toBe(`Bearer ${rotated}`);
  });

  it('ends the session when the refresh token is refused, and returns the 401', async () => {
    const t = setup();
    const expired = vi.fn();
    t.session.onExpired(expired);
    t.store.set({ access: fakeJwt(900), refresh: 'r-revoked' });
    t.onRequest(() => unauthenticated());
    t.onRefresh(() => jsonResponse(401, { error: { code: 'not_authenticated', message: 'revoked' } }));
    const response = await t.session.authFetch(`${base}/x/`);
    expect(response.status).toBe(401);
    expect(t.store.get()).toBeNull();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('keeps the session when the refresh fails for a network or server reason', async () => {
    const t = setup();
    t.store.set({ access: fakeJwt(5), refresh: 'r' });
    t.onRefresh(() => {
      throw new TypeError('Failed to fetch');
    });
    await expect(t.session.authFetch(`${base}/x/`)).rejects.toMatchObject({ code: 'network_error' });
    expect(t.store.get()?.refresh).toBe('r');
    t.onRefresh(() => jsonResponse(503, { error: { code: 'service_unavailable', message: 'down' } }));
    await expect(t.session.accessToken()).rejects.toMatchObject({ status: 503 });
    expect(t.store.get()?.refresh).toBe('r');
  });

  it('does not refresh on a 401 that is not about the token', async () => {
    const t = setup();
    t.store.set({ access: fakeJwt(900), refresh: 'r' });
    t.onRequest(() => jsonResponse(401, { error: { code: 'invalid_credentials', message: 'wrong password' } }));
    const response = await t.session.authFetch(`${base}/api/account/login/`, { method: 'POST' });
    expect(response.status).toBe(401);
    expect(t.refreshes).toEqual([]);
    expect(t.store.get()).not.toBeNull();
  });

  it('sends no token and never refreshes when logged out', async () => {
    const t = setup();
    await t.session.authFetch(`${base}/api/account/login/`, { method: 'POST', body: '{}' });
    expect(t.seen[0].auth).toBeNull();
    expect(t.refreshes).toEqual([]);
  });

  it('serialises refreshes through the cross-tab lock and re-reads the tokens inside it', async () => {
    const held: string[] = [];
    const locks: LockLike = {
      request: async (name, callback) => {
        held.push(name);
        return callback();
      },
    };
    const t = setup({ locks });
    t.store.set({ access: fakeJwt(5), refresh: 'r' });
    await t.session.accessToken();
    expect(held).toEqual(['chat-token-refresh']);
    expect(t.refreshes).toEqual(['r']);
  });
});
