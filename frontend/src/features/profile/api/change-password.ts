import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import type { components } from '@/types/api';

export type ChangePasswordInput = components['schemas']['ChangePasswordRequest'];

export function useChangePassword() {
  return useMutation({
    mutationFn: (body: ChangePasswordInput) => unwrap(api.POST('/api/account/change_password/', { body })),
  });
}
