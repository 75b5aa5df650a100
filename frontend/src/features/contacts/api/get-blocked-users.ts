import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { contactsKeys } from './query-keys';

export function useBlockedUsers() {
  return useQuery({ queryKey: contactsKeys.blocked, queryFn: () => unwrap(api.GET('/api/contact/blocked-users/')) });
}
