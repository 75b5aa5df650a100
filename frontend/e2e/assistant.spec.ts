import { expect, newUserPage, person, register, snapshot, test } from './fixtures';

// The AI routes may not exist on this server yet, or have no provider configured: the page
// must say so plainly instead of breaking. Replies themselves are covered by unit tests.
test('the assistant page renders and explains when the assistant is unavailable', async ({ browser }) => {
  const { page, context } = await newUserPage(browser);
  await register(page, person('Hal'));
  await page.getByRole('link', { name: 'Assistant' }).first().click();
  await expect(page).toHaveURL(/\/assistant$/);
  const unavailable = page.getByTestId('assistant-unavailable');
  const ready = page.getByRole('textbox', { name: 'Ask the assistant' });
  await expect(unavailable.or(ready)).toBeVisible();
  if (await unavailable.isVisible()) {
    await expect(unavailable).toHaveAttribute('data-kind', /^(missing|unconfigured)$/);
  } else {
    await expect(page.getByTestId('token-balance')).toBeVisible();
    // Whether or not a provider is configured, a question ends in a reply or a clear state.
    await ready.fill('hi');
    await ready.press('Enter');
    const settled = page.locator('[data-testid="assistant-turn"][data-role="assistant"][data-status="done"]').or(unavailable);
    await expect(settled).toBeVisible({ timeout: 30_000 });
  }
  await snapshot(page, 'assistant');
  await context.close();
});
