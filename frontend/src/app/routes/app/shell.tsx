import { NavLink, Outlet } from 'react-router';
import { CountBadge } from '@/components/ui/badge';
import { ChatIcon, LogoutIcon, SparklesIcon, UserIcon, UsersIcon } from '@/components/ui/icons';
import { useFriendRequests } from '@/features/contacts/api/get-friend-requests';
import { useRooms } from '@/features/chat/api/get-rooms';
import { useAuth } from '@/lib/auth';
import { cn } from '@/lib/format';
import { AppRealtimeProvider } from '../../realtime-provider';

function useBadges() {
  const rooms = useRooms();
  const requests = useFriendRequests();
  return {
    unread: rooms.data?.reduce((sum, r) => sum + (r.unread_count > 0 ? 1 : 0), 0) ?? 0,
    requests: requests.data?.received.length ?? 0,
  };
}

const items = [
  { to: '/chat', label: 'Chats', Icon: ChatIcon, badge: 'unread' as const },
  { to: '/contacts', label: 'Contacts', Icon: UsersIcon, badge: 'requests' as const },
  { to: '/assistant', label: 'Assistant', Icon: SparklesIcon, badge: null },
  { to: '/profile', label: 'Profile', Icon: UserIcon, badge: null },
];

/** The logged-in app: navigation (a rail on wide screens, a tab bar on phones) and the page. */
export function AppShell() {
  return (
    <AppRealtimeProvider>
      <ShellLayout />
    </AppRealtimeProvider>
  );
}

function ShellLayout() {
  const badges = useBadges();
  const { logout } = useAuth();
  const badgeFor = (kind: 'unread' | 'requests' | null) =>
    kind === 'unread' ? <CountBadge count={badges.unread} label="chats with unread messages" /> : kind === 'requests' ? <CountBadge count={badges.requests} label="friend requests" /> : null;

  return (
    <div className="flex h-dvh flex-col md:flex-row">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:z-50 focus:bg-white focus:p-2">
        Skip to content
      </a>
      <nav aria-label="Main" className="hidden w-20 shrink-0 flex-col items-center gap-1 border-r border-slate-200 bg-white py-4 md:flex">
        <img src="/favicon.svg" alt="Chat" className="mb-4 size-9" />
        {items.map(({ to, label, Icon, badge }) => (
          <NavLink
            key={to}
            to={to}
            className={({ isActive }) =>
              cn('relative flex w-16 flex-col items-center gap-1 rounded-xl py-2 text-[11px] font-medium', isActive ? 'bg-indigo-50 text-indigo-700' : 'text-slate-600 hover:bg-slate-100')
            }
          >
            <Icon className="size-6" />
            {label}
            <span className="absolute top-0.5 right-1">{badgeFor(badge)}</span>
          </NavLink>
        ))}
        <button type="button" onClick={() => void logout()} className="mt-auto flex w-16 flex-col items-center gap-1 rounded-xl py-2 text-[11px] font-medium text-slate-600 hover:bg-slate-100">
          <LogoutIcon className="size-6" />
          Log out
        </button>
      </nav>
      <div id="main" className="min-h-0 flex-1 overflow-y-auto">
        <Outlet />
      </div>
      <nav aria-label="Main" className="flex shrink-0 border-t border-slate-200 bg-white pb-[env(safe-area-inset-bottom)] md:hidden">
        {items.map(({ to, label, Icon, badge }) => (
          <NavLink key={to} to={to} className={({ isActive }) => cn('relative flex flex-1 flex-col items-center gap-0.5 py-2 text-[11px] font-medium', isActive ? 'text-indigo-700' : 'text-slate-600')}>
            <Icon className="size-6" />
            {label}
            <span className="absolute top-1 left-1/2 ml-2">{badgeFor(badge)}</span>
          </NavLink>
        ))}
      </nav>
    </div>
  );
}
