import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { meQueryKey } from '@/lib/auth';
import type { User } from '@/types/models';

export function useVerifyEmail() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ uid, token }: { uid: number; token: string }) =>
      unwrap(api.POST('/api/account/verify-email/{uid}/{token}/', { params: { path: { uid, token } } })),
    onSuccess: (_data, { uid }) => {
      queryClient.setQueryData<User>(meQueryKey, (me) => (me && me.id === uid ? { ...me, email_verified: true } : me));
    },
  });
}
