import {
  acceptFriendRequest,
  displayName,
  expect,
  messageBodies,
  newUserPage,
  person,
  register,
  sendFriendRequest,
  sendMessage,
  snapshot,
  test,
} from './fixtures';

test('two people become friends, chat live, and miss nothing while offline', async ({ browser }) => {
  const alice = person('Alice');
  const bob = person('Bob');
  const a = await newUserPage(browser);
  const b = await newUserPage(browser);

  await test.step('both register', async () => {
    await register(a.page, alice);
    await register(b.page, bob);
  });

  await test.step('they find each other and become friends', async () => {
    await sendFriendRequest(a.page, bob);
    await snapshot(a.page, 'contacts-search');
    await acceptFriendRequest(b.page, alice);
    await snapshot(b.page, 'contacts-requests');
    await b.page.getByRole('tab', { name: 'Friends' }).click();
    await expect(b.page.getByRole('list', { name: 'Friends' }).getByTestId('person-row').filter({ hasText: `@${alice.username}` })).toBeVisible();
  });

  await test.step('Alice opens the private chat from her friends list', async () => {
    await a.page.goto('/contacts');
    const row = a.page.getByRole('list', { name: 'Friends' }).getByTestId('person-row').filter({ hasText: `@${bob.username}` });
    // Bob is connected, so his dot is green.
    await expect(row.getByTestId('presence-dot')).toHaveAttribute('data-online', 'true');
    await row.getByRole('button', { name: 'Message' }).click();
    await expect(a.page).toHaveURL(/\/chat\/\d+$/);
    await expect(a.page.getByTestId('room-title')).toHaveText(displayName(bob));
    await expect(a.page.getByTestId('room-subtitle')).toHaveText('Online');
  });

  await test.step('messages arrive live both ways, without a reload', async () => {
    await sendMessage(a.page, 'Hi Bob!');
    await expect(messageBodies(a.page)).toHaveText(['Hi Bob!']);
    await expect(a.page.getByTestId('message').last()).toHaveAttribute('data-status', 'sent');

    // The new room appears in Bob's list with the message and an unread badge.
    await b.page.goto('/chat');
    const room = b.page.getByTestId('room-item').filter({ hasText: displayName(alice) });
    await expect(room.getByTestId('room-preview')).toHaveText('Hi Bob!');
    await expect(room.getByLabel('1 unread messages')).toBeVisible();
    await room.click();
    await expect(messageBodies(b.page)).toHaveText(['Hi Bob!']);
    await expect(room.getByLabel(/unread messages/)).toHaveCount(0);

    // Bob types: Alice sees it.
    await b.page.getByRole('textbox', { name: 'Message' }).pressSequentially('Hey', { delay: 30 });
    await expect(a.page.getByTestId('room-subtitle')).toHaveText(`${bob.username} is typing…`);
    await b.page.getByRole('textbox', { name: 'Message' }).fill('');
    await sendMessage(b.page, 'Hello Alice, good to see you here.');
    await expect(messageBodies(a.page)).toHaveText(['Hi Bob!', 'Hello Alice, good to see you here.']);
    // Alice has the room open and in view, so she has read it: Bob sees the receipt.
    await expect(b.page.getByTestId('seen')).toHaveText('Seen');
    await sendMessage(a.page, 'How are you?');
    await expect(messageBodies(b.page)).toHaveText(['Hi Bob!', 'Hello Alice, good to see you here.', 'How are you?']);
    await expect(a.page.getByTestId('seen')).toHaveText('Seen');
    await snapshot(a.page, 'chat-desktop');
  });

  await test.step('Bob goes offline, both write, Bob comes back and nothing is lost', async () => {
    await b.context.setOffline(true);
    // Bob's connection is really gone: the server tells Alice he is offline.
    await expect(a.page.getByTestId('room-subtitle')).toHaveText('Offline');
    await expect(b.page.getByTestId('connection-banner')).toBeVisible();
    for (const text of ['One', 'Two', 'Three']) await sendMessage(a.page, text);
    await expect(a.page.getByTestId('message').last()).toHaveAttribute('data-status', 'sent');
    // What Bob writes meanwhile waits for the connection.
    await sendMessage(b.page, 'Written offline');
    await expect(b.page.getByTestId('message').last()).toHaveAttribute('data-status', 'queued');
    await snapshot(b.page, 'chat-offline');
    await expect(messageBodies(b.page)).toHaveText(['Hi Bob!', 'Hello Alice, good to see you here.', 'How are you?', 'Written offline']);

    await b.context.setOffline(false);
    const all = ['Hi Bob!', 'Hello Alice, good to see you here.', 'How are you?', 'One', 'Two', 'Three', 'Written offline'];
    await expect(messageBodies(b.page)).toHaveText(all, { timeout: 30_000 });
    await expect(b.page.getByTestId('message').last()).toHaveAttribute('data-status', 'sent');
    await expect(messageBodies(a.page)).toHaveText(all);
    await expect(b.page.getByTestId('connection-banner')).toHaveCount(0);
    await expect(a.page.getByTestId('room-subtitle')).toHaveText('Online');
  });

  await test.step('Bob closes the app, Alice writes, Bob opens it again and has everything', async () => {
    await b.page.close();
    await expect(a.page.getByTestId('room-subtitle')).toHaveText('Offline');
    await sendMessage(a.page, 'Are you there?');
    await sendMessage(a.page, 'Call me later.');
    await expect(a.page.getByTestId('message').last()).toHaveAttribute('data-status', 'sent');
    const page = await b.context.newPage();
    await page.goto('/chat');
    const room = page.getByTestId('room-item').filter({ hasText: displayName(alice) });
    await expect(room.getByLabel('2 unread messages')).toBeVisible();
    await room.click();
    await expect(messageBodies(page)).toHaveText([
      'Hi Bob!',
      'Hello Alice, good to see you here.',
      'How are you?',
      'One',
      'Two',
      'Three',
      'Written offline',
      'Are you there?',
      'Call me later.',
    ]);
    await expect(a.page.getByTestId('room-subtitle')).toHaveText('Online');
  });

  await a.context.close();
  await b.context.close();
});
