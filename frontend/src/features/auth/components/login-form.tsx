import { type FormEvent, useState } from 'react';
import { Link } from 'react-router';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { Field, Input } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { useLogin } from '../api/login';

export function LoginForm({ onSuccess }: { onSuccess: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const login = useLogin();
  const error = login.error;
  const fieldError = (name: string) => (isApiError(error) ? error.field(name) : undefined);

  function submit(event: FormEvent) {
    event.preventDefault();
    login.mutate({ email: email.trim(), password }, { onSuccess });
  }

  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      {error && !(isApiError(error) && Object.keys(error.fields).length > 0) && (
        <Alert tone="error">{isApiError(error) && error.code === 'invalid_credentials' ? 'Wrong email or password.' : errorMessage(error)}</Alert>
      )}
      <Field label="Email" error={fieldError('email')}>
        {(props) => <Input {...props} type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />}
      </Field>
      <Field label="Password" error={fieldError('password')}>
        {(props) => (
          <Input {...props} type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        )}
      </Field>
      <div className="flex justify-end text-sm">
        <Link to="/forgot-password" className="font-medium text-indigo-600 hover:text-indigo-500">
          Forgot your password?
        </Link>
      </div>
      <Button type="submit" className="w-full" loading={login.isPending} disabled={!email || !password}>
        Log in
      </Button>
    </form>
  );
}
