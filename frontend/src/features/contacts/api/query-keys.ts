export const contactsKeys = {
  all: ['contacts'] as const,
  friends: ['contacts', 'friends'] as const,
  requests: ['contacts', 'requests'] as const,
  blocked: ['contacts', 'blocked'] as const,
  search: (query: string) => ['contacts', 'search', query] as const,
};
