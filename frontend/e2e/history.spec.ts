import { befriendByApi, privateRoomByApi, registerByApi, sendByApi } from './api-helpers';
import { displayName, expect, login, messageBodies, newUserPage, person, test } from './fixtures';

test('scrolling up loads the whole history, in order, without duplicates', async ({ browser }) => {
  const [kim, lee] = [person('Kim'), person('Lee')];
  const [k, l] = await Promise.all([registerByApi(kim), registerByApi(lee)]);
  await befriendByApi(k, l);
  const roomId = await privateRoomByApi(k, l);
  const bodies = Array.from({ length: 130 }, (_, i) => `History ${i + 1}`);
  await sendByApi(k, roomId, bodies);

  const { page, context } = await newUserPage(browser);
  await login(page, lee);
  const room = page.getByTestId('room-item').filter({ hasText: displayName(kim) });
  await expect(room.getByLabel('130 unread messages')).toBeVisible();
  await room.click();
  // The newest page first, scrolled to the bottom.
  await expect(messageBodies(page).last()).toHaveText('History 130');
  await expect(messageBodies(page)).toHaveCount(50);
  await expect(messageBodies(page).last()).toBeInViewport();
  await expect(room.getByLabel(/unread messages/)).toHaveCount(0);

  // Scroll to the top until the first message is there.
  const list = page.getByTestId('message-list');
  await expect(async () => {
    await list.evaluate((el) => el.scrollTo({ top: 0 }));
    await expect(messageBodies(page).first()).toHaveText('History 1', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(messageBodies(page)).toHaveText(bodies);
  await context.close();
});
