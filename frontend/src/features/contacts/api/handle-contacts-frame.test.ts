import { type InfiniteData, QueryClient } from '@tanstack/react-query';
import { describe, expect, it, vi } from 'vitest';
import { userPublic } from '@/testing/factories';
import type { FoundUser, UserPublic } from '@/types/models';
import { handleContactsFrame } from './handle-contacts-frame';
import { contactsKeys } from './query-keys';

describe('presence in the contact lists', () => {
  it('lights up a friend’s dot, in the friends list and in search results', () => {
    const qc = new QueryClient();
    qc.setQueryData<UserPublic[]>(contactsKeys.friends, [userPublic(2), userPublic(3)]);
    qc.setQueryData<InfiniteData<FoundUser[]>>(contactsKeys.search('us'), {
      pages: [[{ ...userPublic(2), relation: 'friend' }]],
      pageParams: [0],
    });
    handleContactsFrame(qc, { type: 'presence', user_id: 2, online: true });
    expect(qc.getQueryData<UserPublic[]>(contactsKeys.friends)?.map((f) => f.online)).toEqual([true, false]);
    expect(qc.getQueryData<InfiniteData<FoundUser[]>>(contactsKeys.search('us'))?.pages[0][0].online).toBe(true);
  });

  it('refreshes the contact lists when a stranger turns up (a request was accepted)', () => {
    const qc = new QueryClient();
    qc.setQueryData<UserPublic[]>(contactsKeys.friends, [userPublic(2)]);
    const invalidate = vi.spyOn(qc, 'invalidateQueries');
    handleContactsFrame(qc, { type: 'presence', user_id: 9, online: true });
    expect(invalidate).toHaveBeenCalledWith({ queryKey: contactsKeys.all });
  });

  it('refreshes friends’ presence after a resync', () => {
    const qc = new QueryClient();
    const invalidate = vi.spyOn(qc, 'invalidateQueries');
    handleContactsFrame(qc, { type: 'synced', cursors: {}, has_more: [] });
    expect(invalidate).toHaveBeenCalledWith({ queryKey: contactsKeys.friends });
  });
});
