import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, expect, type Page, test as base } from '@playwright/test';
import { serverState } from './server-state';

/** Every test talks to the chat-api that global-setup started. */
export const test = base.extend({
  baseURL: async ({}, use) => {
    await use(serverState().baseURL);
  },
});
export { expect };

const runId = Date.now().toString(36).slice(-5);

export interface Person {
  username: string;
  first: string;
  last: string;
  email: string;
  password: string;
}

export function person(first: string): Person {
  const username = `${first.toLowerCase()}_${runId}`;
  return { username, first, last: 'Tester', email: `${username}@example.test`, password: 'correct horse 1' };
}

/** A fresh browser context (its own localStorage: its own session) with one page. */
export async function newUserPage(browser: Browser, options: Parameters<Browser['newContext']>[0] = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: serverState().baseURL, ...options });
  const page = await context.newPage();
  return { context, page };
}

export async function register(page: Page, p: Person): Promise<void> {
  await page.goto('/register');
  await page.getByLabel('First name').fill(p.first);
  await page.getByLabel('Last name').fill(p.last);
  await page.getByLabel('Username').fill(p.username);
  await page.getByLabel('Email').fill(p.email);
  await page.getByLabel('Password', { exact: true }).fill(p.password);
  await page.getByLabel('Repeat password').fill(p.password);
  await page.getByLabel('I accept the terms and conditions.').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/chat$/);
  await expect(page.getByRole('heading', { name: 'Chats' })).toBeVisible();
}

export async function login(page: Page, p: Pick<Person, 'email' | 'password'>): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email').fill(p.email);
  await page.getByLabel('Password').fill(p.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/chat$/);
}

/** Finds `other` on the contacts page and sends a friend request. */
export async function sendFriendRequest(page: Page, other: Person): Promise<void> {
  await page.goto('/contacts?tab=find');
  await page.getByRole('searchbox', { name: 'Search people' }).fill(other.username);
  const row = page.getByTestId('person-row').filter({ hasText: `@${other.username}` });
  await expect(row.getByTestId('relation')).toHaveAttribute('data-relation', 'none');
  await row.getByRole('button', { name: 'Add friend' }).click();
  await expect(row.getByTestId('relation')).toHaveAttribute('data-relation', 'request_sent');
}

export async function acceptFriendRequest(page: Page, from: Person): Promise<void> {
  await page.goto('/contacts?tab=requests');
  const row = page.getByRole('list', { name: 'Received requests' }).getByTestId('person-row').filter({ hasText: `@${from.username}` });
  await row.getByRole('button', { name: 'Accept' }).click();
  await expect(row).toHaveCount(0);
}

/** Opens the room called `name` from the room list. */
export async function openRoom(page: Page, name: string): Promise<void> {
  await page.goto('/chat');
  await page.getByTestId('room-item').filter({ hasText: name }).first().click();
  await expect(page.getByTestId('room-title')).toHaveText(name);
}

export async function sendMessage(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** The bodies of the messages shown in the open room, in order. */
export function messageBodies(page: Page) {
  return page.getByTestId('message-list').getByTestId('message-body');
}

export function displayName(p: Person): string {
  return `${p.first} ${p.last}`;
}

/** Decodes a quoted-printable mail body (soft line breaks and =XX escapes). */
export function decodeQuotedPrintable(text: string): string {
  return text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The newest link to `path` (e.g. /reset-password/) in the mails sent to `email`. */
export async function linkFromMail(email: string, path: string): Promise<string> {
  const outbox = join(serverState().dataDir, 'outbox');
  let found: string | null = null;
  await expect
    .poll(
      () => {
        let files: string[] = [];
        try {
          files = readdirSync(outbox).filter((f) => f.endsWith('.eml')).sort();
        } catch {
          return null;
        }
        for (const file of files.reverse()) {
          const raw = readFileSync(join(outbox, file), 'utf8');
          const [headers, ...rest] = raw.split(/\r?\n\r?\n/);
          if (!new RegExp(`^To:.*${email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'mi').test(headers)) continue;
          const body = decodeQuotedPrintable(rest.join('\n\n'));
          const match = new RegExp(`https?://\\S+${path}\\S+`).exec(body);
          if (match) {
            found = match[0];
            return found;
          }
        }
        return null;
      },
      { message: `a mail to ${email} with a ${path} link`, timeout: 10_000 },
    )
    .not.toBeNull();
  return found as unknown as string;
}

/** Saves a screenshot of the page as a test artifact (test-results/screenshots/). */
export async function snapshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join('test-results', 'screenshots', `${name}.png`), fullPage: false });
}
