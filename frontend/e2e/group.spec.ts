import { befriendByApi, registerByApi } from './api-helpers';
import { displayName, expect, login, messageBodies, newUserPage, openRoom, person, sendMessage, snapshot, test } from './fixtures';

test('a group of three chats in real time', async ({ browser }) => {
  const [carol, dave, erin] = [person('Carol'), person('Dave'), person('Erin')];
  const [c, d, e] = await Promise.all([registerByApi(carol), registerByApi(dave), registerByApi(erin)]);
  await befriendByApi(c, d);
  await befriendByApi(c, e);

  const pages = await Promise.all([newUserPage(browser), newUserPage(browser), newUserPage(browser)]);
  const [cp, dp, ep] = pages.map((p) => p.page);
  await login(cp, carol);
  await login(dp, dave);
  await login(ep, erin);

  await test.step('Carol creates the group with both friends', async () => {
    await cp.getByRole('button', { name: 'New group' }).click();
    const dialog = cp.getByRole('dialog', { name: 'New group' });
    await dialog.getByLabel('Group name').fill('Weekend trip');
    await dialog.getByRole('checkbox', { name: new RegExp(displayName(dave)) }).check();
    await dialog.getByRole('checkbox', { name: new RegExp(displayName(erin)) }).check();
    await snapshot(cp, 'group-create');
    await dialog.getByRole('button', { name: 'Create group' }).click();
    await expect(cp.getByTestId('room-title')).toHaveText('Weekend trip');
    await expect(cp.getByTestId('room-subtitle')).toContainText('3 members');
  });

  await test.step('the group appears for the others without a reload', async () => {
    for (const page of [dp, ep]) await expect(page.getByTestId('room-item').filter({ hasText: 'Weekend trip' })).toBeVisible();
    await openRoom(dp, 'Weekend trip');
    await openRoom(ep, 'Weekend trip');
  });

  await test.step('everyone sees everyone’s messages, in the same order', async () => {
    await sendMessage(cp, 'Where shall we go?');
    await expect(messageBodies(dp)).toHaveText(['Where shall we go?']);
    await sendMessage(dp, 'The mountains!');
    await expect(messageBodies(ep)).toHaveText(['Where shall we go?', 'The mountains!']);
    await sendMessage(ep, 'I bring the tent.');
    const all = ['Where shall we go?', 'The mountains!', 'I bring the tent.'];
    for (const page of [cp, dp, ep]) await expect(messageBodies(page)).toHaveText(all);
    // Senders are named in groups.
    await expect(cp.getByTestId('message').filter({ hasText: 'The mountains!' })).toContainText(displayName(dave));
    await expect(cp.getByTestId('seen')).toHaveText('Seen by everyone');
    await snapshot(ep, 'group-chat');
  });

  await test.step('Erin leaves; the others keep chatting', async () => {
    await ep.getByRole('button', { name: 'Leave' }).click();
    await ep.getByRole('group', { name: 'Leave this group?' }).getByRole('button', { name: 'Leave' }).click();
    await expect(ep).toHaveURL(/\/chat$/);
    await expect(ep.getByTestId('room-item').filter({ hasText: 'Weekend trip' })).toHaveCount(0);
    await expect(cp.getByTestId('room-subtitle')).toContainText('2 members');
    await sendMessage(dp, 'Pity, Erin.');
    await expect(messageBodies(cp)).toHaveText([...['Where shall we go?', 'The mountains!', 'I bring the tent.'], 'Pity, Erin.']);
  });

  await test.step('Carol invites Erin back', async () => {
    await cp.getByRole('button', { name: 'Invite' }).click();
    const dialog = cp.getByRole('dialog', { name: 'Invite to Weekend trip' });
    await dialog.getByRole('listitem').filter({ hasText: displayName(erin) }).getByRole('button', { name: 'Invite' }).click();
    await expect(cp.getByTestId('room-subtitle')).toContainText('3 members');
    await expect(ep.getByTestId('room-item').filter({ hasText: 'Weekend trip' })).toBeVisible();
  });

  for (const p of pages) await p.context.close();
});
