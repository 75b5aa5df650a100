import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuthProvider } from '@/lib/auth';
import { RegisterForm } from './register-form';

function renderForm(onSuccess = vi.fn()) {
  const queryClient = new QueryClient({ defaultOptions: { mutations: { retry: false } } });
  render(
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        <RegisterForm onSuccess={onSuccess} />
      </AuthProvider>
    </QueryClientProvider>,
  );
  return onSuccess;
}

async function fill(user: ReturnType<typeof userEvent.setup>, password2 = 'longenough1') {
  await user.type(screen.getByLabelText('Username'), 'ann');
  await user.type(screen.getByLabelText('Email'), 'ann@example.test');
  await user.type(screen.getByLabelText('Password'), 'longenough1');
  await user.type(screen.getByLabelText('Repeat password'), password2);
  await user.click(screen.getByLabelText('I accept the terms and conditions.'));
}

afterEach(() => vi.unstubAllGlobals());

describe('RegisterForm', () => {
  it('shows the server’s field messages next to their inputs', async () => {
    vi.stubGlobal('fetch', async () =>
      new Response(
        JSON.stringify({ error: { code: 'conflict', message: 'taken', fields: { username: ['this username is taken'], email: ['enter a valid email address'] } } }),
        { status: 409, headers: { 'Content-Type': 'application/json' } },
      ),
    );
    const user = userEvent.setup();
    const onSuccess = renderForm();
    await fill(user);
    await user.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByText('this username is taken')).toBeInTheDocument();
    expect(screen.getByLabelText('Username')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText('Username')).toHaveAccessibleDescription('this username is taken');
    expect(screen.getByLabelText('Email')).toHaveAccessibleDescription('enter a valid email address');
    expect(onSuccess).not.toHaveBeenCalled();
  });

  it('sends tc: true and starts the session on success', async () => {
    const fetch = vi.fn(async (_request: Request) =>
      new Response(
        JSON.stringify({ user: { id: 1, username: 'ann', first_name: '', last_name: '', email: 'ann@example.test', bio: '', email_verified: false, date_joined: '2026-01-01T00:00:00Z' }, access: 'a', refresh: 'r' }),
        { status: 201, headers: { 'Content-Type': 'application/json' } },
      ),
    );
    vi.stubGlobal('fetch', fetch);
    const user = userEvent.setup();
    const onSuccess = renderForm();
    await fill(user);
    await user.click(screen.getByRole('button', { name: 'Create account' }));
    await vi.waitFor(() => expect(onSuccess).toHaveBeenCalled());
    expect(await fetch.mock.calls[0][0].json()).toMatchObject({ username: 'ann', email: 'ann@example.test', tc: true, password2: 'longenough1' });
    expect(JSON.parse(localStorage.getItem('chat.session') ?? '{}')).toEqual({ access: 'a', refresh: 'r' });
  });

  it('catches mismatched passwords before asking the server', async () => {
    const fetch = vi.fn();
    vi.stubGlobal('fetch', fetch);
    const user = userEvent.setup();
    renderForm();
    await fill(user, 'different1');
    await user.click(screen.getByRole('button', { name: 'Create account' }));
    expect(screen.getByText('The passwords do not match.')).toBeInTheDocument();
    expect(fetch).not.toHaveBeenCalled();
  });
});
