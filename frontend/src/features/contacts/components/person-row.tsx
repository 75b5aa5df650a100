import type { ReactNode } from 'react';
import { Avatar } from '@/components/ui/avatar';
import { displayName } from '@/lib/format';
import type { UserPublic } from '@/types/models';

/** One person in a contact list: avatar (with presence when known), names, and actions. */
export function PersonRow({ user, showPresence = false, meta, children }: { user: UserPublic; showPresence?: boolean; meta?: ReactNode; children?: ReactNode }) {
  return (
    <li className="flex flex-wrap items-center gap-3 px-4 py-3 sm:flex-nowrap" data-testid="person-row" data-username={user.username}>
      <Avatar name={displayName(user)} colorKey={user.username} online={showPresence ? user.online : undefined} />
      <div className="min-w-0 flex-1">
        <p className="truncate text-sm font-medium text-slate-900">{displayName(user)}</p>
        <p className="truncate text-xs text-slate-500">
          @{user.username}
          {meta}
        </p>
      </div>
      <div className="flex flex-wrap items-center justify-end gap-2">{children}</div>
    </li>
  );
}
