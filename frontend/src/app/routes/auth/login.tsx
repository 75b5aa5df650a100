import { Link, useNavigate } from 'react-router';
import { AuthLayout } from '@/components/layouts/auth-layout';
import { Alert } from '@/components/ui/alert';
import { LoginForm } from '@/features/auth/components/login-form';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { useAuth } from '@/lib/auth';
import { useNextPath } from '../guards';

export function LoginRoute() {
  useDocumentTitle('Log in');
  const navigate = useNavigate();
  const next = useNextPath();
  const { sessionEnded } = useAuth();
  return (
    <AuthLayout
      title="Welcome back"
      subtitle="Log in to continue chatting."
      footer={
        <>
          New here?{' '}
          <Link to="/register" className="font-medium text-indigo-600 hover:text-indigo-500">
            Create an account
          </Link>
        </>
      }
    >
      {sessionEnded && (
        <Alert tone="warning" className="mb-4">
          Your session has ended. Please log in again.
        </Alert>
      )}
      <LoginForm onSuccess={() => navigate(next, { replace: true })} />
    </AuthLayout>
  );
}
