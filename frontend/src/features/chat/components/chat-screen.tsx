import { useState } from 'react';
import { ChatIcon } from '@/components/ui/icons';
import { cn } from '@/lib/format';
import type { Room } from '@/types/models';
import { ConnectionBanner } from './connection-banner';
import { CreateGroupDialog, type FriendsSource } from './group-dialogs';
import { RoomList } from './room-list';
import { RoomView } from './room-view';

interface ChatScreenProps {
  roomId: number | null;
  friendsSource: FriendsSource;
  contactsHref: string;
  onOpenRoom: (room: Room) => void;
  onLeftRoom: () => void;
}

/** The room list beside the open room (one or the other on a phone). */
export function ChatScreen({ roomId, friendsSource, contactsHref, onOpenRoom, onLeftRoom }: ChatScreenProps) {
  const [creating, setCreating] = useState(false);
  return (
    <div className="flex h-full min-h-0 flex-col">
      <ConnectionBanner />
      <div className="flex min-h-0 flex-1">
        <aside className={cn('min-h-0 w-full border-r border-slate-200 bg-white md:block md:w-80 lg:w-96', roomId !== null && 'hidden')}>
          <RoomList activeRoomId={roomId} onNewGroup={() => setCreating(true)} contactsHref={contactsHref} />
        </aside>
        <main className={cn('min-h-0 min-w-0 flex-1 bg-slate-50', roomId === null && 'hidden md:block')}>
          {roomId !== null ? (
            <RoomView roomId={roomId} friendsSource={friendsSource} onLeft={onLeftRoom} />
          ) : (
            <div className="flex h-full flex-col items-center justify-center gap-3 p-8 text-center text-slate-500">
              <ChatIcon className="size-12 text-slate-300" />
              <p className="text-sm">Pick a chat on the left, or message a friend from your contacts.</p>
            </div>
          )}
        </main>
      </div>
      <CreateGroupDialog open={creating} onClose={() => setCreating(false)} onCreated={onOpenRoom} friendsSource={friendsSource} />
    </div>
  );
}
