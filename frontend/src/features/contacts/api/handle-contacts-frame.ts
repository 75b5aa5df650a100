import type { InfiniteData, QueryClient } from '@tanstack/react-query';
import type { ServerFrame } from '@/lib/realtime/frames';
import type { FoundUser, UserPublic } from '@/types/models';
import { contactsKeys } from './query-keys';

/** Sets `online` on the user with `userId` in a list; the same list when nothing changed. */
export function withPresence<T extends { id: number; online: boolean }>(list: T[], userId: number, online: boolean): T[] {
  let changed = false;
  const next = list.map((user) => {
    if (user.id !== userId || user.online === online) return user;
    changed = true;
    return { ...user, online };
  });
  return changed ? next : list;
}

/** Applies a WebSocket frame to the contact caches. */
export function handleContactsFrame(queryClient: QueryClient, frame: ServerFrame): void {
  if (frame.type === 'synced') {
    // Back after a disconnection: friends who went offline meanwhile sent no notice to us.
    void queryClient.invalidateQueries({ queryKey: contactsKeys.friends });
    return;
  }
  if (frame.type !== 'presence') return;
  const { user_id: userId, online } = frame;
  const friends = queryClient.getQueryData<UserPublic[]>(contactsKeys.friends);
  if (friends && !friends.some((f) => f.id === userId)) {
    // Presence only comes from friends: this one is new (a request was accepted elsewhere).
    void queryClient.invalidateQueries({ queryKey: contactsKeys.all });
  }
  queryClient.setQueryData<UserPublic[]>(contactsKeys.friends, (list) => (list ? withPresence(list, userId, online) : list));
  for (const [key, data] of queryClient.getQueriesData<InfiniteData<FoundUser[]>>({ queryKey: ['contacts', 'search'] })) {
    if (!data) continue;
    const pages = data.pages.map((page) => withPresence(page, userId, online));
    if (pages.some((page, i) => page !== data.pages[i])) queryClient.setQueryData(key, { ...data, pages });
  }
}
