import { type Page } from '@playwright/test';
import { expect, newUserPage, person, register, test } from './fixtures';

/** Collects every Content-Security-Policy violation the page reports, from its first script on. */
async function watchViolations(page: Page): Promise<string[]> {
  const violations: string[] = [];
  await page.exposeFunction('reportViolation', (text: string) => violations.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { reportViolation: (t: string) => void }).reportViolation(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) violations.push(message.text());
  });
  return violations;
}

test('the SPA works under its Content-Security-Policy, and the API docs under theirs', async ({ browser }) => {
  const { page, context } = await newUserPage(browser);
  const violations = await watchViolations(page);
  const answer = await page.goto('/register');
  expect(answer?.headers()['content-security-policy']).toContain("script-src 'self'");
  await register(page, person('Csp'));
  // A live connection (connect-src) and the chat list rendered by the bundle (script-src).
  await expect(page.getByRole('heading', { name: 'Chats' })).toBeVisible();

  const docs = await page.goto('/api/docs/');
  expect(docs?.headers()['content-security-policy']).toContain("style-src 'self' 'unsafe-inline'");
  await expect(page.getByText('/api/account/login/').first()).toBeVisible();
  expect(violations).toEqual([]);
  await context.close();
});
