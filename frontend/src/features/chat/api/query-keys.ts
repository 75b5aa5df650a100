export const chatKeys = {
  rooms: ['rooms'] as const,
  messages: (roomId: number) => ['messages', roomId] as const,
  allMessages: ['messages'] as const,
  receipts: (roomId: number) => ['receipts', roomId] as const,
};
