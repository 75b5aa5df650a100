import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { useAuth } from '@/lib/auth';
import type { components } from '@/types/api';

export type RegisterInput = components['schemas']['RegisterRequest'];

export function register(input: RegisterInput) {
  return unwrap(api.POST('/api/account/register/', { body: input }));
}

export function useRegister() {
  const { startSession } = useAuth();
  return useMutation({ mutationFn: register, onSuccess: startSession });
}
