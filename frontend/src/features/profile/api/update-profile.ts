import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { meQueryKey } from '@/lib/auth';
import type { components } from '@/types/api';

export type ProfileInput = components['schemas']['UpdateProfileRequest'];

export function useUpdateProfile() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: ProfileInput) => unwrap(api.PATCH('/api/account/profile/', { body })),
    onSuccess: (user) => queryClient.setQueryData(meQueryKey, user),
  });
}
