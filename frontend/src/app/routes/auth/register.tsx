import { Link, useNavigate } from 'react-router';
import { AuthLayout } from '@/components/layouts/auth-layout';
import { RegisterForm } from '@/features/auth/components/register-form';
import { useDocumentTitle } from '@/hooks/use-document-title';

export function RegisterRoute() {
  useDocumentTitle('Create an account');
  const navigate = useNavigate();
  return (
    <AuthLayout
      title="Create your account"
      subtitle="Chat with friends in real time."
      footer={
        <>
          Already have an account?{' '}
          <Link to="/login" className="font-medium text-indigo-600 hover:text-indigo-500">
            Log in
          </Link>
        </>
      }
    >
      <RegisterForm onSuccess={() => navigate('/chat', { replace: true })} />
    </AuthLayout>
  );
}
