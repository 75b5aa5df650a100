import { type FormEvent, useState } from 'react';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { Field, Input } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { useChangePassword } from '../api/change-password';

export function ChangePasswordForm() {
  const [form, setForm] = useState({ current_password: '', password: '', password2: '' });
  const [mismatch, setMismatch] = useState(false);
  const change = useChangePassword();
  const error = change.error;
  const fieldError = (name: string) => (isApiError(error) ? error.field(name) : undefined);
  const set = (key: keyof typeof form, value: string) => setForm((f) => ({ ...f, [key]: value }));

  function submit(event: FormEvent) {
    event.preventDefault();
    if (form.password !== form.password2) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    change.mutate(form, { onSuccess: () => setForm({ current_password: '', password: '', password2: '' }) });
  }

  return (
    <section aria-labelledby="password-heading" className="rounded-xl bg-white p-5 ring-1 ring-slate-200">
      <h2 id="password-heading" className="text-base font-semibold text-slate-900">
        Change password
      </h2>
      <p className="mt-1 text-sm text-slate-500">Your other devices will be logged out.</p>
      <form onSubmit={submit} className="mt-4 space-y-4" noValidate>
        {change.isSuccess && <Alert tone="success">Password changed. Other devices have been logged out.</Alert>}
        {error && !(isApiError(error) && Object.keys(error.fields).length > 0) && <Alert tone="error">{errorMessage(error)}</Alert>}
        <Field label="Current password" error={fieldError('current_password')}>
          {(p) => <Input {...p} type="password" autoComplete="current-password" value={form.current_password} onChange={(e) => set('current_password', e.target.value)} />}
        </Field>
        <Field label="New password" error={fieldError('password')} hint="At least 8 characters, not only digits">
          {(p) => <Input {...p} type="password" autoComplete="new-password" value={form.password} onChange={(e) => set('password', e.target.value)} />}
        </Field>
        <Field label="Repeat new password" error={mismatch ? 'The passwords do not match.' : fieldError('password2')}>
          {(p) => <Input {...p} type="password" autoComplete="new-password" value={form.password2} onChange={(e) => set('password2', e.target.value)} />}
        </Field>
        <div className="flex justify-end">
          <Button type="submit" loading={change.isPending} disabled={!form.current_password || !form.password || !form.password2}>
            Change password
          </Button>
        </div>
      </form>
    </section>
  );
}
