import { useParams } from 'react-router';
import { AuthLayout } from '@/components/layouts/auth-layout';
import { Alert } from '@/components/ui/alert';
import { VerifyEmail } from '@/features/auth/components/verify-email';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { useAuth } from '@/lib/auth';

export function VerifyEmailRoute() {
  useDocumentTitle('Confirm your email');
  const { uid, token } = useParams();
  const { isAuthenticated } = useAuth();
  const id = Number(uid);
  const valid = Number.isInteger(id) && id > 0 && Boolean(token);
  return (
    <AuthLayout title="Confirm your email">
      {valid ? <VerifyEmail uid={id} token={token ?? ''} isAuthenticated={isAuthenticated} /> : <Alert tone="error">This link is not complete.</Alert>}
    </AuthLayout>
  );
}
