import { type FormEvent, useState } from 'react';
import { Link } from 'react-router';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { Field, Input } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { sentence } from '@/lib/format';
import { useResetPassword } from '../api/password-reset';

export function ResetPasswordForm({ uid, token, onReset }: { uid: number; token: string; onReset?: () => void }) {
  const [password, setPassword] = useState('');
  const [password2, setPassword2] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const reset = useResetPassword();
  const error = reset.error;
  const fieldError = (name: string) => (isApiError(error) ? error.field(name) : undefined);

  function submit(event: FormEvent) {
    event.preventDefault();
    if (password !== password2) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    reset.mutate({ uid, token, password, password2 }, { onSuccess: onReset });
  }

  if (reset.isSuccess) {
    return (
      <div className="space-y-4">
        <Alert tone="success" title="Password changed">
          Your new password is set, and every device that was logged in has been logged out.
        </Alert>
        <Link to="/login" className="block text-center text-sm font-medium text-indigo-600 hover:text-indigo-500">
          Log in with your new password
        </Link>
      </div>
    );
  }

  const general = !error ? null : isApiError(error) ? (error.status >= 500 || error.code === 'rate_limited' ? errorMessage(error) : error.summary(['password', 'password2'])) : errorMessage(error);

  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      {general && (
        <Alert tone="error">
          {sentence(general)}{' '}
          {isApiError(error) && error.field('token') && (
            <Link to="/forgot-password" className="font-medium underline">
              Ask for a new link
            </Link>
          )}
        </Alert>
      )}
      <Field label="New password" error={fieldError('password')} hint="At least 8 characters, not only digits">
        {(p) => <Input {...p} type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />}
      </Field>
      <Field label="Repeat new password" error={mismatch ? 'The passwords do not match.' : fieldError('password2')}>
        {(p) => <Input {...p} type="password" autoComplete="new-password" required value={password2} onChange={(e) => setPassword2(e.target.value)} />}
      </Field>
      <Button type="submit" className="w-full" loading={reset.isPending} disabled={!password || !password2}>
        Set new password
      </Button>
    </form>
  );
}
