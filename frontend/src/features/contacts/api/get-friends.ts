import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { contactsKeys } from './query-keys';

export function getFriends() {
  return unwrap(api.GET('/api/contact/friends/'));
}

/** The user's friends; presence is kept current by the WebSocket (see handle-contacts-frame). */
export function useFriends() {
  return useQuery({ queryKey: contactsKeys.friends, queryFn: getFriends });
}
