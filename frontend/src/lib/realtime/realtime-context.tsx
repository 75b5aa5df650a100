import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ConnectionStatus, RealtimeClient } from './realtime-client';

export const RealtimeContext = createContext<RealtimeClient | null>(null);

/** The logged-in user's realtime connection (null while logged out). */
export function useRealtime(): RealtimeClient | null {
  return useContext(RealtimeContext);
}

const noop = () => () => undefined;

export function useConnectionStatus(): ConnectionStatus {
  const client = useRealtime();
  return useSyncExternalStore(
    client ? (listener) => client.subscribeStatus(listener) : noop,
    () => client?.status ?? 'offline',
  );
}
