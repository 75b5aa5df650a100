import { memo } from 'react';
import { AlertIcon, CheckIcon, ClockIcon } from '@/components/ui/icons';
import { clockTime, cn, fullTime } from '@/lib/format';
import type { Message } from '@/types/models';
import type { PendingMessage } from '../utils/messages-state';

interface BubbleProps {
  own: boolean;
  /** Show the sender's name above (first of a run, in groups). */
  senderName?: string;
  body: string;
  time: string;
  deleted?: boolean;
  edited?: boolean;
  footer?: React.ReactNode;
  testId: string;
  data?: Record<string, string | number>;
  dimmed?: boolean;
}

function Bubble({ own, senderName, body, time, deleted, edited, footer, testId, data, dimmed }: BubbleProps) {
  const dataAttrs = Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [`data-${k}`, String(v)]));
  return (
    <div className={cn('flex', own ? 'justify-end' : 'justify-start')} data-testid={testId} {...dataAttrs}>
      <div className={cn('max-w-[85%] sm:max-w-[70%]', own ? 'items-end' : 'items-start', 'flex flex-col')}>
        {senderName && <span className="mb-0.5 px-1 text-xs font-medium text-slate-500">{senderName}</span>}
        <div
          className={cn(
            'rounded-2xl px-3.5 py-2 text-sm leading-relaxed break-words whitespace-pre-wrap shadow-xs',
            own ? 'rounded-br-md bg-indigo-600 text-white' : 'rounded-bl-md bg-white text-slate-900 ring-1 ring-slate-200',
            dimmed && 'opacity-70',
          )}
        >
          {deleted ? <em className={own ? 'text-indigo-100' : 'text-slate-400'}>This message was deleted</em> : <span data-testid="message-body">{body}</span>}
        </div>
        <div className="mt-0.5 flex items-center gap-1 px-1 text-[11px] text-slate-500">
          <time dateTime={time} title={fullTime(time)}>
            {clockTime(time)}
          </time>
          {edited && <span>· edited</span>}
          {footer}
        </div>
      </div>
    </div>
  );
}

export const MessageItem = memo(function MessageItem({
  message,
  own,
  senderName,
  seenLabel,
}: {
  message: Message;
  own: boolean;
  senderName?: string;
  seenLabel?: string;
}) {
  return (
    <Bubble
      own={own}
      senderName={senderName}
      body={message.body}
      time={message.created_at}
      deleted={message.deleted}
      edited={Boolean(message.edited_at)}
      testId="message"
      data={{ seq: message.seq, status: 'sent', sender: message.sender.username }}
      footer={
        own && (
          <span className="inline-flex items-center gap-0.5" data-testid="message-status">
            <CheckIcon className="size-3.5 text-indigo-500" />
            <span className="sr-only">Sent</span>
            {seenLabel && <span className="text-indigo-600" data-testid="seen">{seenLabel}</span>}
          </span>
        )
      }
    />
  );
});

export function PendingItem({ pending, onRetry, onDiscard }: { pending: PendingMessage; onRetry: () => void; onDiscard: () => void }) {
  const failed = pending.status === 'failed';
  return (
    <Bubble
      own
      body={pending.body}
      time={pending.created_at}
      dimmed={!failed}
      testId="message"
      data={{ status: pending.status, 'client-id': pending.client_id }}
      footer={
        failed ? (
          <span className="inline-flex items-center gap-1 text-red-600" role="alert">
            <AlertIcon className="size-3.5" />
            {pending.error ?? 'Not sent.'}
            <button type="button" className="font-medium underline hover:text-red-700" onClick={onRetry}>
              Retry
            </button>
            <button type="button" className="text-slate-500 underline hover:text-slate-700" onClick={onDiscard}>
              Discard
            </button>
          </span>
        ) : (
          <span className="inline-flex items-center gap-0.5" data-testid="message-status">
            <ClockIcon className="size-3.5" />
            {pending.status === 'queued' ? 'Waiting for connection' : 'Sending'}
          </span>
        )
      }
    />
  );
}
