import { registerByApi } from './api-helpers';
import { expect, login, newUserPage, person, snapshot, test } from './fixtures';

test('requests can be cancelled and rejected; blocking hides people until unblocked', async ({ browser }) => {
  const [mia, ned] = [person('Mia'), person('Ned')];
  await Promise.all([registerByApi(mia), registerByApi(ned)]);
  const m = await newUserPage(browser);
  const n = await newUserPage(browser);
  await login(m.page, mia);
  await login(n.page, ned);

  const search = async (page: typeof m.page, who: string) => {
    await page.goto('/contacts?tab=find');
    await page.getByRole('searchbox', { name: 'Search people' }).fill(who);
  };
  const resultFor = (page: typeof m.page, username: string) => page.getByTestId('person-row').filter({ hasText: `@${username}` });

  // Mia asks, then thinks better of it.
  await search(m.page, ned.username);
  await resultFor(m.page, ned.username).getByRole('button', { name: 'Add friend' }).click();
  await m.page.getByRole('tab', { name: 'Requests' }).click();
  const sent = m.page.getByRole('list', { name: 'Sent requests' }).getByTestId('person-row').filter({ hasText: `@${ned.username}` });
  await sent.getByRole('button', { name: 'Cancel request' }).click();
  await expect(sent).toHaveCount(0);

  // She asks again; Ned sees it as a request to him, and rejects it.
  await search(m.page, ned.username);
  await resultFor(m.page, ned.username).getByRole('button', { name: 'Add friend' }).click();
  await search(n.page, mia.username);
  await expect(resultFor(n.page, mia.username).getByTestId('relation')).toHaveAttribute('data-relation', 'request_received');
  await n.page.getByRole('tab', { name: /Requests/ }).click();
  const received = n.page.getByRole('list', { name: 'Received requests' }).getByTestId('person-row').filter({ hasText: `@${mia.username}` });
  await received.getByRole('button', { name: 'Reject' }).click();
  await expect(received).toHaveCount(0);

  // Ned blocks Mia: she no longer finds him. He unblocks her: she does again.
  await search(n.page, mia.username);
  await expect(resultFor(n.page, mia.username).getByTestId('relation')).toHaveAttribute('data-relation', 'none');
  await resultFor(n.page, mia.username).getByRole('button', { name: 'Block' }).click();
  await n.page.getByRole('group', { name: `Block ${mia.username}?` }).getByRole('button', { name: 'Block' }).click();
  await expect(resultFor(n.page, mia.username)).toHaveCount(0);
  await n.page.goto('/contacts?tab=blocked');
  const blocked = n.page.getByRole('list', { name: 'Blocked people' }).getByTestId('person-row').filter({ hasText: `@${mia.username}` });
  await expect(blocked).toBeVisible();
  await snapshot(n.page, 'contacts-blocked');
  await search(m.page, ned.username);
  await expect(m.page.getByText(`No one matches “${ned.username}”`)).toBeVisible();

  await n.page.goto('/contacts?tab=blocked');
  await blocked.getByRole('button', { name: 'Unblock' }).click();
  await expect(n.page.getByText('You have not blocked anyone')).toBeVisible();
  await search(m.page, ned.username);
  await expect(resultFor(m.page, ned.username).getByTestId('relation')).toHaveAttribute('data-relation', 'none');

  await m.context.close();
  await n.context.close();
});
