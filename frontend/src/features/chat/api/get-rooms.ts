import { type QueryClient, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import type { Room } from '@/types/models';
import { mergeFetchedRooms } from '../utils/rooms-state';
import { chatKeys } from './query-keys';

export async function fetchRooms(queryClient: QueryClient): Promise<Room[]> {
  const rooms = await unwrap(api.GET('/api/contact/chat-rooms/'));
  return mergeFetchedRooms(queryClient.getQueryData<Room[]>(chatKeys.rooms), rooms);
}

/** The user's rooms, newest activity first; the WebSocket keeps them current. */
export function useRooms() {
  const queryClient = useQueryClient();
  return useQuery({ queryKey: chatKeys.rooms, queryFn: () => fetchRooms(queryClient), staleTime: 60_000 });
}
