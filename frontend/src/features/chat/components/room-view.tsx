import { useState } from 'react';
import { Link } from 'react-router';
import { Button } from '@/components/ui/button';
import { ConfirmButton } from '@/components/ui/confirm-button';
import { BackIcon } from '@/components/ui/icons';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import { useUser } from '@/lib/auth';
import type { Room } from '@/types/models';
import { useRooms } from '../api/get-rooms';
import { useLeaveGroup } from '../api/room-actions';
import { useTypingUsers } from '../stores/typing-store';
import { otherMember } from '../utils/rooms-state';
import { Composer } from './composer';
import { type FriendsSource, InviteDialog, MembersDialog } from './group-dialogs';
import { MessageList } from './message-list';
import { RoomAvatar, roomTitle } from './room-avatar';

export function RoomView({ roomId, friendsSource, onLeft }: { roomId: number; friendsSource: FriendsSource; onLeft: () => void }) {
  const rooms = useRooms();
  const me = useUser().data;
  if (rooms.isPending) return <LoadingState label="Loading chat…" className="h-full" />;
  if (rooms.isError) return <ErrorState error={rooms.error} onRetry={() => void rooms.refetch()} className="h-full" />;
  const room = rooms.data.find((r) => r.id === roomId);
  if (!room) {
    return (
      <EmptyState
        className="h-full"
        title="This chat is not available"
        action={
          <Link to="/chat" className="text-sm font-medium text-indigo-600 hover:text-indigo-500">
            Back to your chats
          </Link>
        }
      >
        It does not exist, or you are no longer a member.
      </EmptyState>
    );
  }
  return <RoomPane key={room.id} room={room} meId={me?.id} friendsSource={friendsSource} onLeft={onLeft} />;
}

function RoomPane({ room, meId, friendsSource, onLeft }: { room: Room; meId: number | undefined; friendsSource: FriendsSource; onLeft: () => void }) {
  const [dialog, setDialog] = useState<'invite' | 'members' | null>(null);
  const leave = useLeaveGroup();
  const typing = useTypingUsers(room.id);
  const typingNames = typing.map((id) => room.members.find((m) => m.id === id)?.username).filter((n): n is string => Boolean(n));
  const other = room.kind === 'private' ? otherMember(room, meId) : undefined;
  const stillFriends = room.kind === 'group' || !friendsSource.friends || friendsSource.friends.some((f) => f.id === other?.id);

  let subtitle: string;
  if (typingNames.length === 1) subtitle = `${typingNames[0]} is typing…`;
  else if (typingNames.length > 1) subtitle = `${typingNames.slice(0, 2).join(', ')}${typingNames.length > 2 ? ' and others' : ''} are typing…`;
  else if (room.kind === 'private') subtitle = other?.online ? 'Online' : 'Offline';
  else subtitle = `${room.members.length} members · ${room.members.filter((m) => m.online && m.id !== meId).length} online`;

  return (
    <section className="flex h-full min-h-0 flex-col" aria-label={roomTitle(room, meId)}>
      <header className="flex items-center gap-3 border-b border-slate-200 bg-white px-3 py-2.5 sm:px-4">
        <Link to="/chat" className="-ml-1 rounded-md p-1 text-slate-600 hover:bg-slate-100 md:hidden" aria-label="Back to chats">
          <BackIcon className="size-5" />
        </Link>
        <RoomAvatar room={room} meId={meId} />
        <div className="min-w-0 flex-1">
          <h2 className="truncate text-base font-semibold text-slate-900" data-testid="room-title">
            {roomTitle(room, meId)}
          </h2>
          <p className={typingNames.length ? 'truncate text-xs text-indigo-600' : 'truncate text-xs text-slate-500'} data-testid="room-subtitle" aria-live="polite">
            {subtitle}
          </p>
        </div>
        {room.kind === 'group' && (
          <div className="flex flex-wrap items-center justify-end gap-1">
            <Button size="sm" variant="ghost" onClick={() => setDialog('members')}>
              Members
            </Button>
            <Button size="sm" variant="secondary" onClick={() => setDialog('invite')}>
              Invite
            </Button>
            <ConfirmButton size="sm" variant="ghost" question="Leave this group?" confirmLabel="Leave" loading={leave.isPending} onConfirm={() => void leave.mutateAsync(room.id).then(onLeft, () => undefined)}>
              Leave
            </ConfirmButton>
          </div>
        )}
      </header>
      {leave.isError && <p className="bg-red-50 px-4 py-2 text-sm text-red-700" role="alert">{errorMessage(leave.error)}</p>}
      <MessageList room={room} meId={meId} />
      <Composer roomId={room.id} disabledReason={stillFriends ? undefined : 'You are no longer friends, so you cannot write here.'} />
      {room.kind === 'group' && (
        <>
          <InviteDialog open={dialog === 'invite'} onClose={() => setDialog(null)} room={room} friendsSource={friendsSource} />
          <MembersDialog open={dialog === 'members'} onClose={() => setDialog(null)} room={room} meId={meId} />
        </>
      )}
    </section>
  );
}
