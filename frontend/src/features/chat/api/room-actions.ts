import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import type { Room } from '@/types/models';
import { removeRoom, upsertRoom } from '../utils/rooms-state';
import { chatKeys } from './query-keys';

function useUpsertRoom() {
  const queryClient = useQueryClient();
  return (room: Room) => queryClient.setQueryData<Room[]>(chatKeys.rooms, (rooms) => (rooms ? upsertRoom(rooms, room) : rooms));
}

/** Opens (creating on first use) the private room with a friend. */
export function useOpenPrivateRoom() {
  const upsert = useUpsertRoom();
  return useMutation({
    mutationFn: (friendId: number) => unwrap(api.POST('/api/contact/chat-room/private/', { body: { user2_id: friendId } })),
    onSuccess: upsert,
  });
}

export function useCreateGroup() {
  const upsert = useUpsertRoom();
  return useMutation({
    mutationFn: (input: { name: string; memberIds: number[] }) =>
      unwrap(api.POST('/api/contact/chat-room/group/', { body: { name: input.name, member_ids: input.memberIds } })),
    onSuccess: upsert,
  });
}

export function useInviteToGroup() {
  const upsert = useUpsertRoom();
  return useMutation({
    mutationFn: (input: { groupId: number; userId: number }) =>
      unwrap(api.POST('/api/contact/chat-room/group/invite/', { body: { group_id: input.groupId, user_id: input.userId } })),
    onSuccess: upsert,
  });
}

export function useLeaveGroup() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (groupId: number) => unwrap(api.POST('/api/contact/chat-room/group/{id}/leave/', { params: { path: { id: groupId } } })),
    onSuccess: (_data, groupId) => {
      queryClient.setQueryData<Room[]>(chatKeys.rooms, (rooms) => (rooms ? removeRoom(rooms, groupId) : rooms));
      queryClient.removeQueries({ queryKey: chatKeys.messages(groupId), exact: true });
    },
  });
}
