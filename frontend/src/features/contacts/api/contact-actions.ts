/**
 * Every change to the user's contacts. Each one refreshes the contact lists it may affect
 * (friends, requests, blocks and search results with their relation badges).
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { contactsKeys } from './query-keys';

function useContactMutation<TInput, TOutput>(mutationFn: (input: TInput) => Promise<TOutput>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn,
    onSettled: () => queryClient.invalidateQueries({ queryKey: contactsKeys.all }),
  });
}

export function useSendFriendRequest() {
  return useContactMutation((receiverId: number) => unwrap(api.POST('/api/contact/friend-request/', { body: { receiver_id: receiverId } })));
}

export function useRespondFriendRequest() {
  return useContactMutation(({ id, action }: { id: number; action: 'accept' | 'reject' }) =>
    unwrap(api.POST('/api/contact/friend-requests/respond/{id}/', { params: { path: { id } }, body: { action } })),
  );
}

export function useCancelFriendRequest() {
  return useContactMutation((id: number) => unwrap(api.DELETE('/api/contact/friend-request/{id}/', { params: { path: { id } } })));
}

export function useRemoveFriend() {
  return useContactMutation((friendId: number) =>
    unwrap(api.DELETE('/api/contact/friends/{friend_id}/', { params: { path: { friend_id: friendId } } })),
  );
}

export function useBlockUser() {
  return useContactMutation((userId: number) => unwrap(api.POST('/api/contact/block-user/', { body: { block_user_id: userId } })));
}

export function useUnblockUser() {
  return useContactMutation((userId: number) =>
    unwrap(api.POST('/api/contact/block-requests/respond/', { body: { user_id: userId, action: 'unblock' } })),
  );
}
