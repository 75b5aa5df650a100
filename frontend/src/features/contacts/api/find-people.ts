import { useInfiniteQuery } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import type { FoundUser } from '@/types/models';
import { contactsKeys } from './query-keys';

export const SEARCH_PAGE_SIZE = 20;

export function findPeople(query: string, offset: number): Promise<FoundUser[]> {
  return unwrap(api.GET('/api/contact/find-friend/', { params: { query: { query, limit: SEARCH_PAGE_SIZE, offset } } }));
}

/** People matching a name prefix or an exact email, a page at a time. */
export function useFindPeople(query: string) {
  const trimmed = query.trim();
  return useInfiniteQuery({
    queryKey: contactsKeys.search(trimmed),
    queryFn: ({ pageParam }) => findPeople(trimmed, pageParam),
    initialPageParam: 0,
    getNextPageParam: (last, pages) => (last.length < SEARCH_PAGE_SIZE ? undefined : pages.length * SEARCH_PAGE_SIZE),
    enabled: trimmed.length > 0,
    staleTime: 10_000,
  });
}
