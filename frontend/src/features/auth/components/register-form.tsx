import { type FormEvent, useState } from 'react';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { Field, Input } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { type RegisterInput, useRegister } from '../api/register';

const empty: RegisterInput = { username: '', first_name: '', last_name: '', email: '', password: '', password2: '', tc: false };

export function RegisterForm({ onSuccess }: { onSuccess: () => void }) {
  const [form, setForm] = useState<RegisterInput>(empty);
  const [mismatch, setMismatch] = useState(false);
  const registration = useRegister();
  const error = registration.error;
  const fieldError = (name: keyof RegisterInput) => (isApiError(error) ? error.field(name) : undefined);
  const set = <K extends keyof RegisterInput>(key: K, value: RegisterInput[K]) => setForm((f) => ({ ...f, [key]: value }));

  function submit(event: FormEvent) {
    event.preventDefault();
    if (form.password !== form.password2) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    registration.mutate(
      { ...form, username: form.username.trim(), email: form.email.trim(), first_name: form.first_name.trim(), last_name: form.last_name.trim() },
      { onSuccess },
    );
  }

  const generalError = error && !(isApiError(error) && Object.keys(error.fields).length > 0) ? errorMessage(error) : null;

  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      {generalError && <Alert tone="error">{generalError}</Alert>}
      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="First name" error={fieldError('first_name')}>
          {(p) => <Input {...p} autoComplete="given-name" value={form.first_name} onChange={(e) => set('first_name', e.target.value)} />}
        </Field>
        <Field label="Last name" error={fieldError('last_name')}>
          {(p) => <Input {...p} autoComplete="family-name" value={form.last_name} onChange={(e) => set('last_name', e.target.value)} />}
        </Field>
      </div>
      <Field label="Username" error={fieldError('username')} hint="3–30 letters, digits, _ . or -">
        {(p) => <Input {...p} autoComplete="username" required value={form.username} onChange={(e) => set('username', e.target.value)} />}
      </Field>
      <Field label="Email" error={fieldError('email')}>
        {(p) => <Input {...p} type="email" autoComplete="email" required value={form.email} onChange={(e) => set('email', e.target.value)} />}
      </Field>
      <Field label="Password" error={fieldError('password')} hint="At least 8 characters, not only digits">
        {(p) => <Input {...p} type="password" autoComplete="new-password" required value={form.password} onChange={(e) => set('password', e.target.value)} />}
      </Field>
      <Field label="Repeat password" error={mismatch ? 'The passwords do not match.' : fieldError('password2')}>
        {(p) => <Input {...p} type="password" autoComplete="new-password" required value={form.password2} onChange={(e) => set('password2', e.target.value)} />}
      </Field>
      <div>
        <label className="flex items-start gap-2 text-sm text-slate-700">
          <input
            type="checkbox"
            name="tc"
            className="mt-0.5 size-4 rounded border-slate-300 accent-indigo-600"
            checked={form.tc}
            onChange={(e) => set('tc', e.target.checked)}
            aria-invalid={Boolean(fieldError('tc'))}
          />
          <span>I accept the terms and conditions.</span>
        </label>
        {fieldError('tc') && <p className="mt-1 text-xs text-red-600">{fieldError('tc')}</p>}
      </div>
      <Button type="submit" className="w-full" loading={registration.isPending} disabled={!form.tc}>
        Create account
      </Button>
    </form>
  );
}
