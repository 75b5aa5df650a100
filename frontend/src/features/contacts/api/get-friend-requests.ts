import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { contactsKeys } from './query-keys';

export function getFriendRequests() {
  return unwrap(api.GET('/api/contact/friend-request/view/'));
}

/**
 * Pending requests to and from the user. The WebSocket carries no friend-request events, so
 * the list is polled (and refetched when the window regains focus).
 */
export function useFriendRequests() {
  return useQuery({ queryKey: contactsKeys.requests, queryFn: getFriendRequests, refetchInterval: 20_000, staleTime: 5_000 });
}
