import { type KeyboardEvent, useRef } from 'react';
import { CountBadge } from '@/components/ui/badge';
import { cn } from '@/lib/format';
import type { UserPublic } from '@/types/models';
import { useFriendRequests } from '../api/get-friend-requests';
import { BlockedList } from './blocked-list';
import { FriendRequests } from './friend-requests';
import { FriendsList } from './friends-list';
import { PeopleSearch } from './people-search';

export const contactTabs = ['friends', 'requests', 'find', 'blocked'] as const;
export type ContactTab = (typeof contactTabs)[number];

const labels: Record<ContactTab, string> = { friends: 'Friends', requests: 'Requests', find: 'Find people', blocked: 'Blocked' };

interface ContactsViewProps {
  tab: ContactTab;
  onTabChange: (tab: ContactTab) => void;
  onMessage?: (user: UserPublic) => void;
  messagingId?: number | null;
}

export function ContactsView({ tab, onTabChange, onMessage, messagingId }: ContactsViewProps) {
  const requests = useFriendRequests();
  const received = requests.data?.received.length ?? 0;
  const tabRefs = useRef<Array<HTMLButtonElement | null>>([]);

  function onKeyDown(event: KeyboardEvent) {
    const index = contactTabs.indexOf(tab);
    const delta = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!delta) return;
    event.preventDefault();
    const next = (index + delta + contactTabs.length) % contactTabs.length;
    onTabChange(contactTabs[next]);
    tabRefs.current[next]?.focus();
  }

  return (
    <div className="mx-auto w-full max-w-3xl p-3 sm:p-6">
      <h1 className="px-1 pb-3 text-xl font-semibold text-slate-900">Contacts</h1>
      <div className="overflow-hidden rounded-xl bg-white ring-1 ring-slate-200">
        <div role="tablist" aria-label="Contacts" className="flex overflow-x-auto border-b border-slate-200" onKeyDown={onKeyDown}>
          {contactTabs.map((name, i) => (
            <button
              key={name}
              ref={(el) => {
                tabRefs.current[i] = el;
              }}
              role="tab"
              id={`tab-${name}`}
              aria-selected={tab === name}
              aria-controls={`panel-${name}`}
              tabIndex={tab === name ? 0 : -1}
              onClick={() => onTabChange(name)}
              className={cn(
                '-mb-px flex items-center gap-2 border-b-2 px-4 py-3 text-sm font-medium whitespace-nowrap',
                tab === name ? 'border-indigo-600 text-indigo-700' : 'border-transparent text-slate-600 hover:text-slate-900',
              )}
            >
              {labels[name]}
              {name === 'requests' && <CountBadge count={received} label="requests waiting" />}
            </button>
          ))}
        </div>
        <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
          {tab === 'friends' && <FriendsList onMessage={onMessage} messagingId={messagingId} onFindPeople={() => onTabChange('find')} />}
          {tab === 'requests' && <FriendRequests />}
          {tab === 'find' && <PeopleSearch onMessage={onMessage} />}
          {tab === 'blocked' && <BlockedList />}
        </div>
      </div>
    </div>
  );
}
