import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '@/lib/api-client';

export function useResendVerification() {
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/account/resend-verification-email/')),
  });
}
