export const assistantKeys = {
  all: ['assistant'] as const,
  balance: ['assistant', 'balance'] as const,
  conversations: ['assistant', 'history'] as const,
  conversation: (id: string) => ['assistant', 'history', id] as const,
};
