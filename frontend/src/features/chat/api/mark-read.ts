import type { QueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import type { RealtimeClient } from '@/lib/realtime/realtime-client';
import type { Room } from '@/types/models';
import { markRoomRead } from '../utils/rooms-state';
import { chatKeys } from './query-keys';

/** Marks a room read up to `seq`: over the WebSocket when connected, else over HTTP. */
export function markRead(queryClient: QueryClient, client: RealtimeClient | null, roomId: number, seq: number): void {
  const rooms = queryClient.getQueryData<Room[]>(chatKeys.rooms);
  const room = rooms?.find((r) => r.id === roomId);
  if (room && seq <= room.last_read_seq && room.unread_count === 0) return;
  if (rooms) queryClient.setQueryData<Room[]>(chatKeys.rooms, markRoomRead(rooms, roomId, seq).rooms);
  const sent = client?.status === 'online' && client.send({ type: 'read', room_id: roomId, seq });
  if (!sent) {
    void unwrap(api.POST('/api/contact/chat-room/{room_id}/read/', { params: { path: { room_id: roomId } }, body: { seq } })).catch(() => {
      // Best effort: the next visit marks it again.
    });
  }
}
