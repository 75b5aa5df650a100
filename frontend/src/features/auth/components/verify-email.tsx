import { useEffect, useRef } from 'react';
import { Link } from 'react-router';
import { Alert } from '@/components/ui/alert';
import { LoadingState } from '@/components/ui/states';
import { errorMessage, isApiError } from '@/lib/api-error';
import { sentence } from '@/lib/format';
import { useVerifyEmail } from '../api/verify-email';

/** Confirms the address from the link in the verification mail, once, on arrival. */
export function VerifyEmail({ uid, token, isAuthenticated }: { uid: number; token: string; isAuthenticated: boolean }) {
  const verify = useVerifyEmail();
  const started = useRef(false);
  const { mutate } = verify;

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    mutate({ uid, token });
  }, [mutate, uid, token]);

  const next = isAuthenticated ? (
    <Link to="/chat" className="font-medium text-indigo-600 hover:text-indigo-500">
      Go to your chats
    </Link>
  ) : (
    <Link to="/login" className="font-medium text-indigo-600 hover:text-indigo-500">
      Log in
    </Link>
  );

  if (verify.isSuccess) {
    return (
      <div className="space-y-4 text-center">
        <Alert tone="success" title="Email confirmed">
          Thank you: your email address is verified.
        </Alert>
        {next}
      </div>
    );
  }
  if (verify.isError) {
    return (
      <div className="space-y-4 text-center">
        <Alert tone="error" title="This link does not work">
          {sentence((isApiError(verify.error) && verify.error.field('token')) || errorMessage(verify.error))} {isAuthenticated ? 'You can ask for a new link on your profile page.' : 'Log in to ask for a new link.'}
        </Alert>
        {isAuthenticated ? (
          <Link to="/profile" className="font-medium text-indigo-600 hover:text-indigo-500">
            Open your profile
          </Link>
        ) : (
          next
        )}
      </div>
    );
  }
  return <LoadingState label="Confirming your email…" />;
}
