import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, type KeyboardEvent, useEffect, useReducer, useRef, useState } from 'react';
import { Link } from 'react-router';
import { Alert } from '@/components/ui/alert';
import { Button } from '@/components/ui/button';
import { PlusIcon, SendIcon, SparklesIcon } from '@/components/ui/icons';
import { EmptyState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import { cn, shortTime } from '@/lib/format';
import type { TokenBalance } from '@/types/ai';
import { streamChat, useConversationHistory, useConversations, useTokenBalance } from '../api/assistant-api';
import { assistantKeys } from '../api/query-keys';
import { availabilityOf, initialThread, threadReducer, type Turn } from '../utils/assistant-state';

interface AssistantViewProps {
  conversationId: string | null;
  /** The conversation got its id (first reply) or the user picked another one. */
  onConversationChange: (id: string | null) => void;
}

const numberFormat = new Intl.NumberFormat();

/** Ids travel as strings in URLs; the API takes integer ids as numbers. */
function toConversationId(id: string): string | number {
  return /^\d+$/.test(id) ? Number(id) : id;
}

export function AssistantView({ conversationId, onConversationChange }: AssistantViewProps) {
  const queryClient = useQueryClient();
  const balance = useTokenBalance();
  const conversationList = useConversations();
  const history = useConversationHistory(conversationId);
  const [thread, dispatch] = useReducer(threadReducer, { ...initialThread, conversationId });
  const abort = useRef<AbortController | null>(null);
  const scroller = useRef<HTMLDivElement>(null);

  // Another conversation was picked (not the one this thread just got its id for).
  useEffect(() => {
    if (conversationId !== thread.conversationId && !thread.streaming) {
      abort.current?.abort();
      dispatch({ type: 'reset', conversationId });
    }
  }, [conversationId, thread.conversationId, thread.streaming]);

  useEffect(() => {
    if (history.data && conversationId !== null) dispatch({ type: 'loaded', conversationId, history: history.data });
  }, [history.data, conversationId]);

  useEffect(() => {
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [thread.turns]);

  useEffect(() => () => abort.current?.abort(), []);

  // The page-wide state: the balance route tells whether the assistant exists at all.
  const blocked = availabilityOf(balance.error);
  const failure = availabilityOf(thread.error);
  const unavailable = blocked.kind === 'missing' || blocked.kind === 'unconfigured' ? blocked : failure.kind === 'missing' || failure.kind === 'unconfigured' ? failure : null;
  const outOfTokens = failure.kind === 'out_of_tokens' || (balance.data !== undefined && balance.data.balance <= 0);

  async function ask(message: string) {
    const controller = new AbortController();
    abort.current = controller;
    dispatch({ type: 'send', id: crypto.randomUUID?.() ?? String(Date.now()), message });
    try {
      const reply = await streamChat(
        { message, ...(thread.conversationId !== null ? { conversation_id: toConversationId(thread.conversationId) } : {}) },
        (text) => dispatch({ type: 'delta', text }),
        controller.signal,
      );
      dispatch({ type: 'done', reply });
      queryClient.setQueryData<TokenBalance>(assistantKeys.balance, (b) => (b ? { ...b, balance: reply.token_balance, used: b.used + reply.tokens_used } : b));
      void queryClient.invalidateQueries({ queryKey: assistantKeys.balance });
      void queryClient.invalidateQueries({ queryKey: assistantKeys.conversations, exact: true });
      const id = String(reply.conversation_id);
      if (id !== conversationId) onConversationChange(id);
    } catch (error) {
      if (controller.signal.aborted) dispatch({ type: 'stopped' });
      else dispatch({ type: 'failed', error: error instanceof Error ? error : new Error(String(error)) });
    } finally {
      if (abort.current === controller) abort.current = null;
    }
  }

  const conversations = conversationList.data ?? [];

  return (
    <div className="flex h-full min-h-0">
      <aside className="hidden w-72 shrink-0 flex-col border-r border-slate-200 bg-white md:flex">
        <div className="space-y-3 border-b border-slate-200 p-4">
          <h1 className="flex items-center gap-2 text-lg font-semibold text-slate-900">
            <SparklesIcon className="size-5 text-indigo-600" /> Assistant
          </h1>
          <BalanceCard balance={balance.data} loading={balance.isPending} unavailable={Boolean(unavailable)} />
          <Button className="w-full" variant="secondary" onClick={() => onConversationChange(null)} disabled={thread.streaming}>
            <PlusIcon className="size-4" /> New conversation
          </Button>
        </div>
        <nav aria-label="Conversations" className="min-h-0 flex-1 overflow-y-auto p-2">
          {conversationList.isPending ? (
            <LoadingState label="Loading conversations…" />
          ) : conversations.length === 0 ? (
            <p className="px-2 py-3 text-sm text-slate-500">{conversationList.isError ? 'Past conversations cannot be listed right now.' : 'No conversations yet.'}</p>
          ) : (
            <ul className="space-y-0.5">
              {conversations.map((c) => (
                <li key={c.id}>
                  <Link
                    to={`/assistant/${encodeURIComponent(c.id)}`}
                    aria-current={c.id === conversationId ? 'page' : undefined}
                    className={cn('block rounded-lg px-3 py-2 text-sm hover:bg-slate-50', c.id === conversationId && 'bg-indigo-50 text-indigo-900 hover:bg-indigo-50')}
                  >
                    <span className="block truncate">{c.title}</span>
                    <span className="text-xs text-slate-500">{shortTime(c.updatedAt)}</span>
                  </Link>
                </li>
              ))}
            </ul>
          )}
        </nav>
      </aside>

      <section className="flex min-w-0 flex-1 flex-col" aria-label="Conversation with the assistant">
        <div className="flex items-center justify-between gap-2 border-b border-slate-200 bg-white px-4 py-2.5 md:hidden">
          <h1 className="flex items-center gap-2 font-semibold text-slate-900">
            <SparklesIcon className="size-5 text-indigo-600" /> Assistant
          </h1>
          <div className="flex items-center gap-2">
            {balance.data && <span className="text-xs text-slate-600" data-testid="token-balance-compact">{numberFormat.format(balance.data.balance)} tokens</span>}
            <Button size="sm" variant="secondary" onClick={() => onConversationChange(null)} disabled={thread.streaming}>
              New
            </Button>
          </div>
        </div>

        {unavailable ? (
          <div className="flex flex-1 items-center justify-center p-6" data-testid="assistant-unavailable" data-kind={unavailable.kind}>
            <Alert tone="info" title={unavailable.title} className="max-w-md">
              {unavailable.message}
            </Alert>
          </div>
        ) : (
          <>
            <div ref={scroller} className="min-h-0 flex-1 overflow-y-auto px-4 py-6 sm:px-8" role="log" aria-live="polite" aria-busy={thread.streaming}>
              {conversationId !== null && history.isPending && thread.turns.length === 0 ? (
                <LoadingState label="Loading conversation…" />
              ) : history.isError && thread.turns.length === 0 ? (
                <Alert tone="error">{errorMessage(history.error)}</Alert>
              ) : thread.turns.length === 0 ? (
                <EmptyState title="Ask anything">Replies appear as they are written. Each reply uses tokens from your balance.</EmptyState>
              ) : (
                <ol className="mx-auto max-w-3xl space-y-4">
                  {thread.turns.map((turn) => (
                    <TurnItem key={turn.id} turn={turn} />
                  ))}
                </ol>
              )}
            </div>
            {outOfTokens && (
              <Alert tone="warning" title="You are out of tokens" className="mx-4 mb-2">
                Your balance cannot pay for another reply{balance.data ? ` (${numberFormat.format(balance.data.used)} of ${numberFormat.format(balance.data.granted)} used)` : ''}.
              </Alert>
            )}
            {thread.error && failure.kind === 'ok' && (
              <Alert tone="error" className="mx-4 mb-2">
                {errorMessage(thread.error)}
              </Alert>
            )}
            <AssistantComposer streaming={thread.streaming} disabled={outOfTokens} onSend={(m) => void ask(m)} onStop={() => abort.current?.abort()} />
          </>
        )}
      </section>
    </div>
  );
}

function BalanceCard({ balance, loading, unavailable }: { balance: TokenBalance | undefined; loading: boolean; unavailable: boolean }) {
  if (loading) return <div className="h-16 animate-pulse rounded-lg bg-slate-100" />;
  if (!balance) return unavailable ? null : <p className="text-xs text-slate-500">Balance unavailable.</p>;
  const share = balance.granted > 0 ? Math.min(100, (balance.used / balance.granted) * 100) : 0;
  return (
    <div className="rounded-lg bg-slate-50 p-3 ring-1 ring-slate-200" data-testid="token-balance">
      <p className="text-xs text-slate-500">Token balance</p>
      <p className="text-lg font-semibold text-slate-900">{numberFormat.format(balance.balance)}</p>
      <div className="mt-1 h-1.5 overflow-hidden rounded-full bg-slate-200" aria-hidden="true">
        <div className="h-full bg-indigo-500" style={{ width: `${share}%` }} />
      </div>
      <p className="mt-1 text-xs text-slate-500">
        {numberFormat.format(balance.used)} used of {numberFormat.format(balance.granted)}
      </p>
    </div>
  );
}

function TurnItem({ turn }: { turn: Turn }) {
  const mine = turn.role === 'user';
  return (
    <li className={cn('flex', mine ? 'justify-end' : 'justify-start')} data-testid="assistant-turn" data-role={turn.role} data-status={turn.status}>
      <div
        className={cn(
          'max-w-[90%] rounded-2xl px-4 py-2.5 text-sm leading-relaxed whitespace-pre-wrap',
          mine ? 'rounded-br-md bg-indigo-600 text-white' : 'rounded-bl-md bg-white text-slate-900 ring-1 ring-slate-200',
        )}
      >
        {turn.content}
        {turn.status === 'streaming' && <span className="ml-0.5 inline-block h-4 w-1.5 animate-pulse bg-slate-400 align-middle" aria-label="Writing" />}
        {turn.status === 'stopped' && <span className="mt-1 block text-xs text-slate-400">Stopped.</span>}
        {turn.status === 'error' && <span className="mt-1 block text-xs text-red-600">{turn.error ?? 'The reply failed.'}</span>}
      </div>
    </li>
  );
}

function AssistantComposer({ streaming, disabled, onSend, onStop }: { streaming: boolean; disabled: boolean; onSend: (message: string) => void; onStop: () => void }) {
  const [message, setMessage] = useState('');

  function submit(event?: FormEvent) {
    event?.preventDefault();
    const text = message.trim();
    if (!text || streaming || disabled) return;
    onSend(text);
    setMessage('');
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  }

  return (
    <form onSubmit={submit} className="border-t border-slate-200 bg-white px-4 py-3">
      <div className="mx-auto flex max-w-3xl items-end gap-2">
        <label htmlFor="assistant-input" className="sr-only">
          Ask the assistant
        </label>
        <textarea
          id="assistant-input"
          rows={1}
          value={message}
          disabled={disabled}
          onChange={(e) => setMessage(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder={disabled ? 'No tokens left' : 'Ask the assistant…'}
          className="max-h-40 min-h-10 flex-1 resize-none rounded-2xl border-0 bg-slate-100 px-4 py-2.5 text-sm focus:bg-white focus:ring-2 focus:ring-indigo-500 focus:outline-none disabled:opacity-60"
        />
        {streaming ? (
          <Button variant="secondary" onClick={onStop}>
            Stop
          </Button>
        ) : (
          <button
            type="submit"
            disabled={!message.trim() || disabled}
            aria-label="Send"
            className="inline-flex size-10 shrink-0 items-center justify-center rounded-full bg-indigo-600 text-white hover:bg-indigo-700 disabled:bg-slate-300"
          >
            <SendIcon className="size-5" />
          </button>
        )}
      </div>
    </form>
  );
}
