import { devices } from '@playwright/test';
import { expect, newUserPage, person, register, snapshot, test } from './fixtures';

test('on a phone, the list and the room take the whole screen in turn', async ({ browser }) => {
  const { viewport, userAgent, deviceScaleFactor, isMobile, hasTouch } = devices['Pixel 7'];
  const { page, context } = await newUserPage(browser, { viewport, userAgent, deviceScaleFactor, isMobile, hasTouch });
  await register(page, person('Ivy'));
  await expect(page.getByRole('navigation', { name: 'Main' }).last()).toBeVisible();
  await snapshot(page, 'mobile-chats');
  await page.goto('/contacts?tab=find');
  await page.getByRole('searchbox', { name: 'Search people' }).fill('nobody-matches-this');
  await expect(page.getByText('No one matches')).toBeVisible();
  await snapshot(page, 'mobile-contacts');
  await context.close();
});
