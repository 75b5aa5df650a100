import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';

export function useSendResetEmail() {
  return useMutation({
    mutationFn: (email: string) => unwrap(api.POST('/api/account/send-reset-password-email/', { body: { email } })),
  });
}

export interface ResetPasswordInput {
  uid: number;
  token: string;
  password: string;
  password2: string;
}

export function useResetPassword() {
  return useMutation({
    mutationFn: ({ uid, token, password, password2 }: ResetPasswordInput) =>
      unwrap(
        api.POST('/api/account/reset-password/{uid}/{token}/', {
          params: { path: { uid, token } },
          body: { password, password2 },
        }),
      ),
  });
}
