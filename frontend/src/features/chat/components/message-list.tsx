import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Fragment, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { Button } from '@/components/ui/button';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { Spinner } from '@/components/ui/spinner';
import { errorMessage } from '@/lib/api-error';
import { dayHeading, displayName, sameDay } from '@/lib/format';
import { useRealtime } from '@/lib/realtime/realtime-context';
import type { Message, Room } from '@/types/models';
import { useLoadOlderMessages, useRoomMessages } from '../api/get-messages';
import { markRead } from '../api/mark-read';
import { discardMessage, retryMessage } from '../api/outbox';
import { chatKeys } from '../api/query-keys';
import type { Receipts } from '../api/realtime-sync';
import { MessageItem, PendingItem } from './message-item';

const NEAR_BOTTOM_PX = 120;
const RUN_GAP_MS = 5 * 60_000;

function useReceipts(roomId: number): Receipts {
  return useQuery({ queryKey: chatKeys.receipts(roomId), queryFn: () => ({}) as Receipts, initialData: {} as Receipts, staleTime: Infinity }).data;
}

function usePageVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  useEffect(() => {
    const update = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', update);
    return () => document.removeEventListener('visibilitychange', update);
  }, []);
  return visible;
}

export function MessageList({ room, meId }: { room: Room; meId: number | undefined }) {
  const roomId = room.id;
  const query = useRoomMessages(roomId);
  const loadOlder = useLoadOlderMessages(roomId);
  const receipts = useReceipts(roomId);
  const queryClient = useQueryClient();
  const client = useRealtime();
  const visible = usePageVisible();
  const scroller = useRef<HTMLDivElement>(null);
  const topSentinel = useRef<HTMLDivElement>(null);
  const [atBottom, setAtBottom] = useState(true);
  const layout = useRef({ firstSeq: 0, lastKey: '', scrollHeight: 0, atBottom: true, initial: true });

  const state = query.data;
  const messages = state?.messages ?? [];
  const pending = state?.pending ?? [];
  const firstSeq = messages[0]?.seq ?? 0;
  const lastKey = pending.length > 0 ? pending[pending.length - 1].client_id : String(messages[messages.length - 1]?.seq ?? '');
  const lastIsOwnPending = pending.length > 0;

  // Keep the view where the reader is: anchored when older pages come in above, following new
  // messages only when already at the bottom (or when the user just wrote one).
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !state) return;
    const prev = layout.current;
    if (prev.initial) {
      el.scrollTop = el.scrollHeight;
      prev.initial = false;
    } else if (prev.firstSeq !== 0 && firstSeq !== 0 && firstSeq < prev.firstSeq) {
      el.scrollTop += el.scrollHeight - prev.scrollHeight;
    } else if (lastKey !== prev.lastKey && (prev.atBottom || lastIsOwnPending)) {
      el.scrollTop = el.scrollHeight;
    }
    prev.firstSeq = firstSeq;
    prev.lastKey = lastKey;
    prev.scrollHeight = el.scrollHeight;
    prev.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    setAtBottom(prev.atBottom);
  }, [state, firstSeq, lastKey, lastIsOwnPending]);

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    layout.current.atBottom = bottom;
    layout.current.scrollHeight = el.scrollHeight;
    setAtBottom(bottom);
  }, []);

  // Infinite scroll into history: the sentinel at the top comes into view.
  const canLoadOlder = Boolean(state?.hasMoreBefore) && !loadOlder.isPending && !loadOlder.isError;
  const { mutate: fetchOlder } = loadOlder;
  useEffect(() => {
    const sentinel = topSentinel.current;
    const root = scroller.current;
    if (!sentinel || !root || !canLoadOlder || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) fetchOlder();
    }, { root, rootMargin: '200px 0px 0px 0px' });
    observer.observe(sentinel);
    return () => observer.disconnect();
  }, [canLoadOlder, fetchOlder, firstSeq]);

  // Read receipts: the newest message from someone else is on screen.
  const lastFromOthers = useMemo(() => {
    for (let i = messages.length - 1; i >= 0; i--) if (messages[i].sender.id !== meId) return messages[i].seq;
    return 0;
  }, [messages, meId]);
  useEffect(() => {
    if (!atBottom || !visible || lastFromOthers === 0) return;
    if (lastFromOthers > room.last_read_seq || room.unread_count > 0) markRead(queryClient, client, roomId, Math.max(lastFromOthers, room.last_read_seq));
  }, [atBottom, visible, lastFromOthers, room.last_read_seq, room.unread_count, queryClient, client, roomId]);

  const seenLabel = useMemo(() => seenFor(messages, meId, room, receipts), [messages, meId, room, receipts]);

  if (query.isPending) return <LoadingState label="Loading messages…" className="flex-1" />;
  if (query.isError) return <ErrorState error={query.error} onRetry={() => void query.refetch()} className="flex-1" />;

  return (
    <div className="relative min-h-0 flex-1">
      <div ref={scroller} onScroll={onScroll} className="h-full overflow-y-auto px-3 py-4 sm:px-6" role="log" aria-live="polite" aria-label="Messages" data-testid="message-list">
        <div ref={topSentinel} />
        {query.data.hasMoreBefore && (
          <div className="flex justify-center pb-3">
            {loadOlder.isPending ? (
              <Spinner label="Loading earlier messages" className="text-slate-400" />
            ) : (
              <Button size="sm" variant="ghost" onClick={() => loadOlder.mutate()}>
                {loadOlder.isError ? `${errorMessage(loadOlder.error)} Load earlier messages` : 'Load earlier messages'}
              </Button>
            )}
          </div>
        )}
        {messages.length === 0 && pending.length === 0 ? (
          <EmptyState title="No messages yet">{room.kind === 'group' ? 'Start the conversation.' : 'Say hello!'}</EmptyState>
        ) : (
          <div className="space-y-1.5">
            {messages.map((message, i) => {
              const prev = messages[i - 1];
              const newDay = !prev || !sameDay(prev.created_at, message.created_at);
              const newRun = newDay || prev.sender.id !== message.sender.id || Date.parse(message.created_at) - Date.parse(prev.created_at) > RUN_GAP_MS;
              const own = message.sender.id === meId;
              return (
                <Fragment key={message.seq}>
                  {newDay && <DaySeparator iso={message.created_at} />}
                  <div className={newRun && !newDay && i > 0 ? 'pt-2' : undefined}>
                    <MessageItem
                      message={message}
                      own={own}
                      senderName={!own && newRun && room.kind === 'group' ? displayName(message.sender) : undefined}
                      seenLabel={seenLabel?.seq === message.seq ? seenLabel.label : undefined}
                    />
                  </div>
                </Fragment>
              );
            })}
            {pending.map((p) => (
              <PendingItem
                key={p.client_id}
                pending={p}
                onRetry={() => retryMessage(queryClient, client, p.client_id)}
                onDiscard={() => discardMessage(queryClient, roomId, p.client_id)}
              />
            ))}
          </div>
        )}
      </div>
      {!atBottom && (
        <button
          type="button"
          onClick={() => scroller.current?.scrollTo({ top: scroller.current.scrollHeight, behavior: 'smooth' })}
          className="absolute right-4 bottom-3 rounded-full bg-white px-3 py-1.5 text-xs font-medium text-indigo-700 shadow-md ring-1 ring-slate-200 hover:bg-indigo-50"
        >
          {room.unread_count > 0 ? `${room.unread_count} new ↓` : 'Latest ↓'}
        </button>
      )}
    </div>
  );
}

function DaySeparator({ iso }: { iso: string }) {
  return (
    <div className="flex items-center gap-3 py-2 text-xs text-slate-400" role="separator">
      <span className="h-px flex-1 bg-slate-200" />
      {dayHeading(iso)}
      <span className="h-px flex-1 bg-slate-200" />
    </div>
  );
}

/** "Seen" (private) or "Seen by N" (group) under the user's newest message others have read. */
function seenFor(messages: Message[], meId: number | undefined, room: Room, receipts: Receipts): { seq: number; label: string } | null {
  let own: Message | undefined;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].sender.id === meId) {
      own = messages[i];
      break;
    }
  }
  if (!own) return null;
  const readers = room.members.filter((m) => m.id !== meId && (receipts[m.id] ?? 0) >= own.seq);
  if (readers.length === 0) return null;
  if (room.kind === 'private') return { seq: own.seq, label: 'Seen' };
  return { seq: own.seq, label: readers.length === room.members.length - 1 ? 'Seen by everyone' : `Seen by ${readers.length}` };
}
