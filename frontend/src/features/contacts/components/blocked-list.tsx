import { Button } from '@/components/ui/button';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import { useUnblockUser } from '../api/contact-actions';
import { useBlockedUsers } from '../api/get-blocked-users';
import { PersonRow } from './person-row';

export function BlockedList() {
  const blocked = useBlockedUsers();
  const unblock = useUnblockUser();

  if (blocked.isPending) return <LoadingState label="Loading blocked people…" />;
  if (blocked.isError) return <ErrorState error={blocked.error} onRetry={() => void blocked.refetch()} />;
  if (blocked.data.length === 0) {
    return <EmptyState title="You have not blocked anyone">People you block cannot find you, message you or send you requests.</EmptyState>;
  }
  return (
    <>
      {unblock.error && <p className="px-4 pt-3 text-sm text-red-700" role="alert">{errorMessage(unblock.error)}</p>}
      <ul className="divide-y divide-slate-100" aria-label="Blocked people">
        {blocked.data.map((user) => (
          <PersonRow key={user.id} user={user}>
            <Button size="sm" variant="secondary" loading={unblock.isPending && unblock.variables === user.id} onClick={() => unblock.mutate(user.id)}>
              Unblock
            </Button>
          </PersonRow>
        ))}
      </ul>
    </>
  );
}
