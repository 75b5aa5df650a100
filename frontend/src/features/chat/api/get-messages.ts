import { type QueryClient, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { meQueryKey } from '@/lib/auth';
import type { Message, MessagePage, User } from '@/types/models';
import { applyIncoming, contiguousLastSeq, mergeMessages, prependOlder, type RoomMessages } from '../utils/messages-state';
import { chatKeys } from './query-keys';

export const PAGE_SIZE = 50;
const CATCH_UP_PAGE = 200;
/** Beyond this many missed messages, start again from the newest page instead. */
const MAX_CATCH_UP_PAGES = 5;

export function getHistory(roomId: number, query: { before?: number; after?: number; limit: number }): Promise<MessagePage> {
  return unwrap(api.GET('/api/contact/chat-room/message/{room_id}/', { params: { path: { room_id: roomId }, query } }));
}

export function currentUserId(queryClient: QueryClient): number | undefined {
  return queryClient.getQueryData<User>(meQueryKey)?.id;
}

/**
 * Loads a room's messages. The first time: the newest page. Afterwards (a refetch to fill a
 * gap, or after a long disconnection): everything after the last message held without a gap,
 * merged with whatever arrived live meanwhile; far behind, the newest page again.
 */
export async function fetchRoomMessages(queryClient: QueryClient, roomId: number): Promise<RoomMessages> {
  const key = chatKeys.messages(roomId);
  const existing = queryClient.getQueryData<RoomMessages>(key);
  const meId = currentUserId(queryClient);

  if (existing && existing.messages.length > 0) {
    let after = contiguousLastSeq(existing);
    const fetched: Message[] = [];
    let more = true;
    for (let page = 0; more && page < MAX_CATCH_UP_PAGES; page++) {
      const result = await getHistory(roomId, { after, limit: CATCH_UP_PAGE });
      fetched.push(...result.messages);
      more = result.has_more && result.messages.length > 0;
      if (result.messages.length > 0) after = result.messages[result.messages.length - 1].seq;
    }
    const latest = queryClient.getQueryData<RoomMessages>(key) ?? existing;
    if (!more) return applyIncoming(latest, fetched, meId);
  }

  const page = await getHistory(roomId, { limit: PAGE_SIZE });
  const latest = queryClient.getQueryData<RoomMessages>(key);
  const newestFetched = page.messages[page.messages.length - 1]?.seq ?? 0;
  // Live messages that arrived while the page was on its way.
  const live = latest?.messages.filter((m) => m.seq > newestFetched) ?? [];
  const fresh: RoomMessages = { messages: mergeMessages(page.messages, live), pending: latest?.pending ?? [], hasMoreBefore: page.has_more };
  return applyIncoming(fresh, page.messages, meId);
}

/** A room's messages; kept current by the WebSocket, so never refetched on a timer. */
export function useRoomMessages(roomId: number) {
  const queryClient = useQueryClient();
  return useQuery({
    queryKey: chatKeys.messages(roomId),
    queryFn: () => fetchRoomMessages(queryClient, roomId),
    staleTime: Infinity,
    gcTime: 30 * 60_000,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  });
}

/** Loads the page of history just before the oldest message held. */
export function useLoadOlderMessages(roomId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      const key = chatKeys.messages(roomId);
      const state = queryClient.getQueryData<RoomMessages>(key);
      if (!state || !state.hasMoreBefore || state.messages.length === 0) return;
      const page = await getHistory(roomId, { before: state.messages[0].seq, limit: PAGE_SIZE });
      queryClient.setQueryData<RoomMessages>(key, (s) => (s ? prependOlder(s, page.messages, page.has_more) : s));
    },
  });
}
