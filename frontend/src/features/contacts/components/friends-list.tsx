import { Button } from '@/components/ui/button';
import { ConfirmButton } from '@/components/ui/confirm-button';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import type { UserPublic } from '@/types/models';
import { useBlockUser, useRemoveFriend } from '../api/contact-actions';
import { useFriends } from '../api/get-friends';
import { PersonRow } from './person-row';

interface FriendsListProps {
  /** Opens the private chat with a friend (wired by the app to the chat feature). */
  onMessage?: (friend: UserPublic) => void;
  messagingId?: number | null;
  onFindPeople?: () => void;
}

export function FriendsList({ onMessage, messagingId, onFindPeople }: FriendsListProps) {
  const friends = useFriends();
  const remove = useRemoveFriend();
  const block = useBlockUser();

  if (friends.isPending) return <LoadingState label="Loading friends…" />;
  if (friends.isError) return <ErrorState error={friends.error} onRetry={() => void friends.refetch()} />;
  if (friends.data.length === 0) {
    return (
      <EmptyState
        title="No friends yet"
        action={
          onFindPeople && (
            <Button variant="secondary" onClick={onFindPeople}>
              Find people
            </Button>
          )
        }
      >
        Search for people you know and send them a friend request.
      </EmptyState>
    );
  }
  const online = [...friends.data].sort((a, b) => Number(b.online) - Number(a.online));
  const actionError = remove.error ?? block.error;
  return (
    <>
      {actionError && <p className="px-4 pt-3 text-sm text-red-700" role="alert">{errorMessage(actionError)}</p>}
      <ul className="divide-y divide-slate-100" aria-label="Friends">
        {online.map((friend) => (
          <PersonRow key={friend.id} user={friend} showPresence meta={friend.online ? ' · online' : null}>
            {onMessage && (
              <Button size="sm" onClick={() => onMessage(friend)} loading={messagingId === friend.id}>
                Message
              </Button>
            )}
            <ConfirmButton
              size="sm"
              variant="ghost"
              question={`Remove ${friend.username}?`}
              confirmLabel="Remove"
              loading={remove.isPending && remove.variables === friend.id}
              onConfirm={() => remove.mutate(friend.id)}
            >
              Remove
            </ConfirmButton>
            <ConfirmButton
              size="sm"
              variant="ghost"
              question={`Block ${friend.username}?`}
              confirmLabel="Block"
              loading={block.isPending && block.variables === friend.id}
              onConfirm={() => block.mutate(friend.id)}
            >
              Block
            </ConfirmButton>
          </PersonRow>
        ))}
      </ul>
    </>
  );
}
