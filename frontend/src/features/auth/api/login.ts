import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';
import { useAuth } from '@/lib/auth';
import type { components } from '@/types/api';

export type LoginInput = components['schemas']['LoginRequest'];

export function login(input: LoginInput) {
  return unwrap(api.POST('/api/account/login/', { body: input }));
}

export function useLogin() {
  const { startSession } = useAuth();
  return useMutation({ mutationFn: login, onSuccess: startSession });
}
