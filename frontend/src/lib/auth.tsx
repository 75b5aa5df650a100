import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import type { AuthResponse, User } from '@/types/models';
import { api, session, tokenStore, unwrap } from './api-client';

export const meQueryKey = ['me'] as const;

export async function getMe(): Promise<User> {
  return unwrap(api.GET('/api/account/profile/'));
}

// "Your session has ended" must survive the reload that often follows (the tab was reopened).
const ENDED_KEY = 'chat.sessionEnded';

function readEndedFlag(): boolean {
  try {
    return sessionStorage.getItem(ENDED_KEY) === '1';
  } catch {
    return false;
  }
}

function writeEndedFlag(ended: boolean): void {
  try {
    if (ended) sessionStorage.setItem(ENDED_KEY, '1');
    else sessionStorage.removeItem(ENDED_KEY);
  } catch {
    // Storage disabled: the notice lasts until the next reload.
  }
}

interface AuthContextValue {
  /** Whether tokens are stored (the profile may still be loading). */
  isAuthenticated: boolean;
  /** Set when the last session ended on its own (expired, revoked, logged out elsewhere). */
  sessionEnded: boolean;
  /** Stores a fresh session from login or registration. */
  startSession: (auth: AuthResponse) => void;
  /** Logs out: revokes the refresh token on the server, then forgets everything locally. */
  logout: () => Promise<void>;
  /** Forgets the session locally only (the server already ended it, e.g. by a password reset). */
  forget: () => void;
}

const AuthContext = createContext<AuthContextValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const raw = useSyncExternalStore(
    (listener) => tokenStore.subscribe(listener),
    () => tokenStore.raw(),
  );
  const isAuthenticated = raw !== null && tokenStore.get() !== null;
  const [sessionEnded, setSessionEndedState] = useState(() => readEndedFlag());
  const setSessionEnded = useCallback((ended: boolean) => {
    writeEndedFlag(ended);
    setSessionEndedState(ended);
  }, []);
  // A deliberate logout revokes the session, which the server also announces (WebSocket 1008):
  // that is not "your session ended".
  const loggingOut = useRef(false);

  useEffect(
    () =>
      session.onExpired(() => {
        if (!loggingOut.current) setSessionEnded(true);
      }),
    [setSessionEnded],
  );

  // Logged out (here, in another tab, or by an expired session): drop every cached answer.
  useEffect(() => {
    if (!isAuthenticated) queryClient.clear();
  }, [isAuthenticated, queryClient]);

  const startSession = useCallback(
    (auth: AuthResponse) => {
      queryClient.clear();
      queryClient.setQueryData(meQueryKey, auth.user);
      setSessionEnded(false);
      tokenStore.set({ access: auth.access, refresh: auth.refresh });
    },
    [queryClient, setSessionEnded],
  );

  const logout = useCallback(async () => {
    const tokens = tokenStore.get();
    loggingOut.current = true;
    try {
      if (tokens) await unwrap(api.POST('/api/account/logout/', { body: { refresh: tokens.refresh } }));
    } catch {
      // Offline or already revoked: forgetting the tokens locally still logs out here.
    } finally {
      setSessionEnded(false);
      tokenStore.set(null);
      queryClient.clear();
      loggingOut.current = false;
    }
  }, [queryClient, setSessionEnded]);

  const forget = useCallback(() => {
    setSessionEnded(false);
    tokenStore.set(null);
    queryClient.clear();
  }, [queryClient, setSessionEnded]);

  const value = useMemo(
    () => ({ isAuthenticated, sessionEnded, startSession, logout, forget }),
    [isAuthenticated, sessionEnded, startSession, logout, forget],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth needs an AuthProvider');
  return value;
}

/** The logged-in user's own profile. */
export function useUser() {
  const { isAuthenticated } = useAuth();
  return useQuery({ queryKey: meQueryKey, queryFn: getMe, enabled: isAuthenticated, staleTime: 60_000 });
}
