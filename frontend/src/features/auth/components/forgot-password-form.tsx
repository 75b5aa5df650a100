import { type FormEvent, useState } from 'react';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { Field, Input } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { useSendResetEmail } from '../api/password-reset';

export function ForgotPasswordForm() {
  const [email, setEmail] = useState('');
  const send = useSendResetEmail();

  function submit(event: FormEvent) {
    event.preventDefault();
    send.mutate(email.trim());
  }

  if (send.isSuccess) {
    return (
      <Alert tone="success" title="Check your inbox">
        If an account uses <strong>{send.variables}</strong>, a link to choose a new password is on its way. It works once and expires within an hour.
      </Alert>
    );
  }

  const error = send.error;
  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      {error && !(isApiError(error) && error.field('email')) && <Alert tone="error">{errorMessage(error)}</Alert>}
      <Field label="Email" error={isApiError(error) ? error.field('email') : undefined}>
        {(p) => <Input {...p} type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />}
      </Field>
      <Button type="submit" className="w-full" loading={send.isPending} disabled={!email.trim()}>
        Send reset link
      </Button>
    </form>
  );
}
