import { expect, request as playwrightRequest } from '@playwright/test';
import type { Person } from './fixtures';
import { serverState } from './server-state';

export interface Account {
  id: number;
  access: string;
}

async function api() {
  return playwrightRequest.newContext({ baseURL: serverState().baseURL });
}

/** Creates an account through the API (the UI path is covered by chat.spec.ts). */
export async function registerByApi(p: Person): Promise<Account> {
  const ctx = await api();
  const response = await ctx.post('/api/account/register/', {
    data: { username: p.username, first_name: p.first, last_name: p.last, email: p.email, password: p.password, password2: p.password, tc: true },
  });
  expect(response.status()).toBe(201);
  const body = (await response.json()) as { user: { id: number }; access: string };
  await ctx.dispose();
  return { id: body.user.id, access: body.access };
}

export async function befriendByApi(from: Account, to: Account): Promise<void> {
  const ctx = await api();
  const sent = await ctx.post('/api/contact/friend-request/', { data: { receiver_id: to.id }, headers: { Authorization: `Bearer ${from.access}` } });
  expect(sent.status()).toBe(201);
  const { id } = (await sent.json()) as { id: number };
  const answered = await ctx.post(`/api/contact/friend-requests/respond/${id}/`, { data: { action: 'accept' }, headers: { Authorization: `Bearer ${to.access}` } });
  expect(answered.status()).toBe(200);
  await ctx.dispose();
}

export async function privateRoomByApi(from: Account, to: Account): Promise<number> {
  const ctx = await api();
  const response = await ctx.post('/api/contact/chat-room/private/', { data: { user2_id: to.id }, headers: { Authorization: `Bearer ${from.access}` } });
  expect(response.ok()).toBe(true);
  const { id } = (await response.json()) as { id: number };
  await ctx.dispose();
  return id;
}

export async function sendByApi(from: Account, roomId: number, bodies: string[]): Promise<void> {
  const ctx = await api();
  for (const [i, body] of bodies.entries()) {
    const response = await ctx.post(`/api/contact/chat-room/message/${roomId}/`, {
      data: { body, client_id: `e2e-${roomId}-${i}-${Date.now()}` },
      headers: { Authorization: `Bearer ${from.access}` },
    });
    expect(response.status()).toBe(201);
  }
  await ctx.dispose();
}
