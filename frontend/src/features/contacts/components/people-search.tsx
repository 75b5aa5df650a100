import { useEffect, useState } from 'react';
import { Pill } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { ConfirmButton } from '@/components/ui/confirm-button';
import { Input } from '@/components/ui/field';
import { SearchIcon } from '@/components/ui/icons';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import type { FoundUser, UserPublic } from '@/types/models';
import { useBlockUser, useRespondFriendRequest, useSendFriendRequest } from '../api/contact-actions';
import { useFindPeople } from '../api/find-people';
import { useFriendRequests } from '../api/get-friend-requests';
import { PersonRow } from './person-row';

function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

export function PeopleSearch({ onMessage }: { onMessage?: (user: UserPublic) => void }) {
  const [query, setQuery] = useState('');
  const debounced = useDebounced(query.trim(), 300);
  const results = useFindPeople(debounced);
  const people = results.data?.pages.flat() ?? [];

  return (
    <div>
      <div className="p-4">
        <label htmlFor="people-search" className="sr-only">
          Search people
        </label>
        <div className="relative">
          <SearchIcon className="pointer-events-none absolute top-1/2 left-3 size-4 -translate-y-1/2 text-slate-400" />
          <Input
            id="people-search"
            type="search"
            autoComplete="off"
            placeholder="Search by name, username or exact email"
            className="pl-9"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </div>
      </div>
      {debounced === '' ? (
        <EmptyState title="Find people">Type the beginning of a name or username, or someone’s full email address.</EmptyState>
      ) : results.isPending ? (
        <LoadingState label="Searching…" />
      ) : results.isError ? (
        <ErrorState error={results.error} onRetry={() => void results.refetch()} />
      ) : people.length === 0 ? (
        <EmptyState title={`No one matches “${debounced}”`}>Check the spelling, or try their email address.</EmptyState>
      ) : (
        <>
          <ul className="divide-y divide-slate-100 border-t border-slate-100" aria-label="Search results">
            {people.map((person) => (
              <SearchResult key={person.id} person={person} onMessage={onMessage} />
            ))}
          </ul>
          {results.hasNextPage && (
            <div className="p-4 text-center">
              <Button variant="secondary" size="sm" loading={results.isFetchingNextPage} onClick={() => void results.fetchNextPage()}>
                Show more
              </Button>
            </div>
          )}
        </>
      )}
    </div>
  );
}

const relationLabel: Record<FoundUser['relation'], { text: string; tone: 'neutral' | 'green' | 'amber' | 'indigo' }> = {
  none: { text: 'Not connected', tone: 'neutral' },
  friend: { text: 'Friend', tone: 'green' },
  request_sent: { text: 'Request sent', tone: 'amber' },
  request_received: { text: 'Wants to be friends', tone: 'indigo' },
};

function SearchResult({ person, onMessage }: { person: FoundUser; onMessage?: (user: UserPublic) => void }) {
  const send = useSendFriendRequest();
  const respond = useRespondFriendRequest();
  const block = useBlockUser();
  const requests = useFriendRequests();
  const label = relationLabel[person.relation];
  const incoming = requests.data?.received.find((r) => r.sender.id === person.id);
  const error = send.error ?? respond.error ?? block.error;

  return (
    <PersonRow user={person} showPresence={person.relation === 'friend'}>
      <span data-testid="relation" data-relation={person.relation}>
        <Pill tone={label.tone}>{label.text}</Pill>
      </span>
      {person.relation === 'none' && (
        <Button size="sm" loading={send.isPending} onClick={() => send.mutate(person.id)}>
          Add friend
        </Button>
      )}
      {person.relation === 'request_received' && incoming && (
        <Button size="sm" loading={respond.isPending} onClick={() => respond.mutate({ id: incoming.id, action: 'accept' })}>
          Accept
        </Button>
      )}
      {person.relation === 'friend' && onMessage && (
        <Button size="sm" variant="secondary" onClick={() => onMessage(person)}>
          Message
        </Button>
      )}
      <ConfirmButton size="sm" variant="ghost" question={`Block ${person.username}?`} confirmLabel="Block" loading={block.isPending} onConfirm={() => block.mutate(person.id)}>
        Block
      </ConfirmButton>
      {error && (
        <span role="alert" className="w-full text-right text-xs text-red-700">
          {errorMessage(error)}
        </span>
      )}
    </PersonRow>
  );
}
