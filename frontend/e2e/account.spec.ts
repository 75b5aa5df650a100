import { expect, linkFromMail, login, newUserPage, person, register, snapshot, test } from './fixtures';

test('registration explains what is wrong, next to the field', async ({ browser }) => {
  const { page, context } = await newUserPage(browser);
  await page.goto('/register');
  await snapshot(page, 'register');
  await page.getByLabel('Username').fill('x');
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Password', { exact: true }).fill('12345678');
  await page.getByLabel('Repeat password').fill('12345678');
  await page.getByLabel('I accept the terms and conditions.').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByLabel('Username')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Email')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Password', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  await expect(page).toHaveURL(/\/register$/);
  await context.close();
});

test('email verification, profile editing, logout and login', async ({ browser }) => {
  const { page, context } = await newUserPage(browser);
  const fay = person('Fay');
  await register(page, fay);

  await page.goto('/profile');
  await expect(page.getByText('Not verified')).toBeVisible();
  const link = await linkFromMail(fay.email, '/verify-email/');
  await page.goto(link);
  await expect(page.getByText('Email confirmed')).toBeVisible();
  await page.goto('/profile');
  await expect(page.getByText('Verified', { exact: true })).toBeVisible();

  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('About you').fill('Climbing, coffee, and chess.');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('Climbing, coffee, and chess.')).toBeVisible();
  await snapshot(page, 'profile');

  await page.getByRole('button', { name: 'Log out' }).first().click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/chat');
  await expect(page).toHaveURL(/\/login\?next=%2Fchat$/);
  await page.getByLabel('Email').fill(fay.email);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await snapshot(page, 'login-error');
  await login(page, fay);
  await context.close();
});

test('a forgotten password is reset from the link in the mail', async ({ browser }) => {
  const gus = person('Gus');
  const first = await newUserPage(browser);
  await register(first.page, gus);

  const { page, context } = await newUserPage(browser);
  await page.goto('/login');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Email').fill(gus.email);
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await expect(page.getByText('Check your inbox')).toBeVisible();

  const link = await linkFromMail(gus.email, '/reset-password/');
  expect(new URL(link).pathname).toMatch(/^\/reset-password\/\d+\/[^/]+\/?$/);
  await page.goto(link);
  await page.getByLabel('New password', { exact: true }).fill('a brand new secret');
  await page.getByLabel('Repeat new password').fill('a brand new secret');
  await snapshot(page, 'reset-password');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(page.getByText('Password changed')).toBeVisible();

  // The link works once.
  await page.goto(link);
  await page.getByLabel('New password', { exact: true }).fill('yet another secret');
  await page.getByLabel('Repeat new password').fill('yet another secret');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(page.getByRole('link', { name: 'Ask for a new link' })).toBeVisible();

  // The reset logged out the other browser: its next request sends it to the login page.
  await first.page.goto('/profile');
  await expect(first.page).toHaveURL(/\/login/);
  await expect(first.page.getByText('Your session has ended. Please log in again.')).toBeVisible();

  await login(page, { email: gus.email, password: 'a brand new secret' });
  await context.close();
  await first.context.close();
});
