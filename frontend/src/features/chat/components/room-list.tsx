import { Link } from 'react-router';
import { CountBadge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { PlusIcon } from '@/components/ui/icons';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { useUser } from '@/lib/auth';
import { cn, shortTime } from '@/lib/format';
import type { Room } from '@/types/models';
import { useRooms } from '../api/get-rooms';
import { RoomAvatar, roomTitle } from './room-avatar';

interface RoomListProps {
  activeRoomId: number | null;
  onNewGroup: () => void;
  /** Where to find friends to chat with (the contacts page). */
  contactsHref: string;
}

export function RoomList({ activeRoomId, onNewGroup, contactsHref }: RoomListProps) {
  const rooms = useRooms();
  const me = useUser().data;

  return (
    <div className="flex h-full min-h-0 flex-col">
      <div className="flex items-center justify-between gap-2 border-b border-slate-200 px-4 py-3">
        <h1 className="text-lg font-semibold text-slate-900">Chats</h1>
        <Button size="sm" variant="secondary" onClick={onNewGroup}>
          <PlusIcon className="size-4" />
          New group
        </Button>
      </div>
      <div className="min-h-0 flex-1 overflow-y-auto">
        {rooms.isPending ? (
          <LoadingState label="Loading chats…" />
        ) : rooms.isError ? (
          <ErrorState error={rooms.error} onRetry={() => void rooms.refetch()} />
        ) : rooms.data.length === 0 ? (
          <EmptyState
            title="No chats yet"
            action={
              <Link to={contactsHref} className="text-sm font-medium text-indigo-600 hover:text-indigo-500">
                Find friends to chat with
              </Link>
            }
          >
            Message a friend from your contacts, or start a group.
          </EmptyState>
        ) : (
          <ul aria-label="Chats" className="divide-y divide-slate-100">
            {rooms.data.map((room) => (
              <RoomListItem key={room.id} room={room} meId={me?.id} active={room.id === activeRoomId} />
            ))}
          </ul>
        )}
      </div>
    </div>
  );
}

function preview(room: Room, meId: number | undefined): string {
  const last = room.last_message;
  if (!last) return room.kind === 'group' ? `${room.members.length} members` : 'Say hello 👋';
  const body = last.deleted ? 'Message deleted' : last.body.replace(/\s+/g, ' ');
  if (last.sender.id === meId) return `You: ${body}`;
  return room.kind === 'group' ? `${last.sender.username}: ${body}` : body;
}

function RoomListItem({ room, meId, active }: { room: Room; meId: number | undefined; active: boolean }) {
  const unread = room.unread_count;
  const title = roomTitle(room, meId);
  return (
    <li data-testid="room-item" data-room-id={room.id} data-room-name={title}>
      <Link
        to={`/chat/${room.id}`}
        aria-current={active ? 'page' : undefined}
        className={cn('flex items-center gap-3 px-4 py-3 hover:bg-slate-50 focus-visible:-outline-offset-2', active && 'bg-indigo-50 hover:bg-indigo-50')}
      >
        <RoomAvatar room={room} meId={meId} />
        <div className="min-w-0 flex-1">
          <div className="flex items-baseline justify-between gap-2">
            <p className={cn('truncate text-sm text-slate-900', unread > 0 ? 'font-semibold' : 'font-medium')}>{title}</p>
            {room.last_message && <time className="shrink-0 text-xs text-slate-500" dateTime={room.last_message.created_at}>{shortTime(room.last_message.created_at)}</time>}
          </div>
          <div className="flex items-center justify-between gap-2">
            <p className={cn('truncate text-sm', unread > 0 ? 'text-slate-800' : 'text-slate-500')} data-testid="room-preview">
              {preview(room, meId)}
            </p>
            <CountBadge count={unread} label="unread messages" />
          </div>
        </div>
      </Link>
    </li>
  );
}
