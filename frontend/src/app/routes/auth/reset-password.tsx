import { Link, useParams } from 'react-router';
import { AuthLayout } from '@/components/layouts/auth-layout';
import { Alert } from '@/components/ui/alert';
import { ResetPasswordForm } from '@/features/auth/components/reset-password-form';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { useAuth } from '@/lib/auth';

export function ResetPasswordRoute() {
  useDocumentTitle('Choose a new password');
  const { uid, token } = useParams();
  const { isAuthenticated, forget } = useAuth();
  const id = Number(uid);
  const valid = Number.isInteger(id) && id > 0 && Boolean(token);
  return (
    <AuthLayout title="Choose a new password">
      {valid ? (
        // A reset ends every session, this browser's included.
        <ResetPasswordForm uid={id} token={token ?? ''} onReset={isAuthenticated ? forget : undefined} />
      ) : (
        <Alert tone="error">
          This link is not complete.{' '}
          <Link to="/forgot-password" className="font-medium underline">
            Ask for a new one
          </Link>
          .
        </Alert>
      )}
    </AuthLayout>
  );
}
