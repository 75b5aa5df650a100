import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from 'react';
import { SendIcon } from '@/components/ui/icons';
import { cn } from '@/lib/format';
import { useRealtime } from '@/lib/realtime/realtime-context';
import { MAX_BODY_LENGTH, sendMessage } from '../api/outbox';

const TYPING_EVERY_MS = 2_500;

/** Drafts survive switching rooms (not reloads). */
const drafts = new Map<number, string>();

export function Composer({ roomId, disabledReason }: { roomId: number; disabledReason?: string }) {
  const queryClient = useQueryClient();
  const client = useRealtime();
  const [body, setBody] = useState(() => drafts.get(roomId) ?? '');
  const lastTyping = useRef(0);
  const textarea = useRef<HTMLTextAreaElement>(null);
  const trimmed = body.trim();
  const tooLong = body.length > MAX_BODY_LENGTH;

  useEffect(() => {
    drafts.set(roomId, body);
  }, [roomId, body]);

  // Grow with the text, up to a limit.
  useEffect(() => {
    const el = textarea.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [body]);

  function onChange(value: string) {
    setBody(value);
    const now = Date.now();
    if (value.trim() && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      client?.send({ type: 'typing', room_id: roomId });
    }
  }

  function submit(event?: FormEvent) {
    event?.preventDefault();
    if (!trimmed || tooLong || disabledReason) return;
    sendMessage(queryClient, client, roomId, trimmed);
    setBody('');
    lastTyping.current = 0;
    textarea.current?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  }

  return (
    <form onSubmit={submit} className="border-t border-slate-200 bg-white px-3 py-3 pb-[max(0.75rem,env(safe-area-inset-bottom))] sm:px-4">
      {disabledReason ? (
        <p className="py-2 text-center text-sm text-slate-500">{disabledReason}</p>
      ) : (
        <div className="flex items-end gap-2">
          <label htmlFor={`composer-${roomId}`} className="sr-only">
            Message
          </label>
          <textarea
            id={`composer-${roomId}`}
            ref={textarea}
            rows={1}
            value={body}
            onChange={(e) => onChange(e.target.value)}
            onKeyDown={onKeyDown}
            placeholder="Write a message…"
            aria-invalid={tooLong}
            aria-describedby={tooLong ? `composer-${roomId}-count` : undefined}
            className="max-h-40 min-h-10 flex-1 resize-none rounded-2xl border-0 bg-slate-100 px-4 py-2.5 text-sm text-slate-900 placeholder:text-slate-500 focus:bg-white focus:ring-2 focus:ring-indigo-500 focus:outline-none"
          />
          <button
            type="submit"
            disabled={!trimmed || tooLong}
            className="inline-flex size-10 shrink-0 items-center justify-center rounded-full bg-indigo-600 text-white hover:bg-indigo-700 disabled:bg-slate-300"
            aria-label="Send"
          >
            <SendIcon className="size-5" />
          </button>
        </div>
      )}
      {body.length > MAX_BODY_LENGTH - 500 && !disabledReason && (
        <p id={`composer-${roomId}-count`} className={cn('mt-1 text-right text-xs', tooLong ? 'text-red-600' : 'text-slate-500')}>
          {body.length}/{MAX_BODY_LENGTH}
        </p>
      )}
    </form>
  );
}
