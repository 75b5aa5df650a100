import { useQueryClient } from '@tanstack/react-query';
import { type ReactNode, useEffect, useState } from 'react';
import { handleContactsFrame } from '@/features/contacts/api/handle-contacts-frame';
import { createChatFrameHandler, syncCursors } from '@/features/chat/api/realtime-sync';
import { typingStore } from '@/features/chat/stores/typing-store';
import { session } from '@/lib/api-client';
import { getMe } from '@/lib/auth';
import { RealtimeClient } from '@/lib/realtime/realtime-client';
import { RealtimeContext } from '@/lib/realtime/realtime-context';

/** The WebSocket URL, built anew for each (re)connect so it carries a fresh access token. */
async function socketUrl(): Promise<string> {
  const token = await session.accessToken();
  if (!token) throw new Error('not logged in');
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/ws/?token=${encodeURIComponent(token)}`;
}

let lastProbe = 0;

/**
 * A refused upgrade looks like any network failure from the browser. An authenticated request
 * tells them apart: it refreshes the tokens if they expired, and ends the session if it was
 * revoked (which sends the user to the login page).
 */
function probeSession(): void {
  const now = Date.now();
  if (now - lastProbe < 15_000) return;
  lastProbe = now;
  void getMe().catch(() => undefined);
}

/** Connects the logged-in user's WebSocket and feeds its frames to the features' caches. */
export function AppRealtimeProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [client] = useState(
    () =>
      new RealtimeClient({
        url: socketUrl,
        cursors: () => syncCursors(queryClient),
        onRevoked: () => session.expire(),
        onConnectFailure: probeSession,
      }),
  );

  useEffect(() => {
    const offChat = client.onFrame(createChatFrameHandler(queryClient, () => client));
    const offContacts = client.onFrame((frame) => handleContactsFrame(queryClient, frame));
    client.start();
    return () => {
      offChat();
      offContacts();
      client.stop();
      typingStore.clear();
    };
  }, [client, queryClient]);

  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}
