import { Button } from '@/components/ui/button';
import { ErrorState, LoadingState } from '@/components/ui/states';
import { ChangePasswordForm } from '@/features/profile/components/change-password-form';
import { ProfileDetails } from '@/features/profile/components/profile-details';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { useAuth, useUser } from '@/lib/auth';

export function ProfileRoute() {
  useDocumentTitle('Profile');
  const user = useUser();
  const { logout } = useAuth();
  return (
    <div className="mx-auto w-full max-w-2xl space-y-4 p-3 sm:p-6">
      <div className="flex items-center justify-between px-1">
        <h1 className="text-xl font-semibold text-slate-900">Profile</h1>
        <Button variant="secondary" size="sm" onClick={() => void logout()}>
          Log out
        </Button>
      </div>
      {user.isPending ? (
        <LoadingState />
      ) : user.isError ? (
        <ErrorState error={user.error} onRetry={() => void user.refetch()} />
      ) : (
        <>
          <ProfileDetails user={user.data} />
          <ChangePasswordForm />
        </>
      )}
    </div>
  );
}
