import { useState } from 'react';
import { Button, type ButtonProps } from './button';

interface ConfirmButtonProps extends Omit<ButtonProps, 'onClick'> {
  /** The question shown after the first click, e.g. "Block Ann?". */
  question: string;
  confirmLabel?: string;
  onConfirm: () => void;
}

/** A destructive action that asks once, inline, before it runs. */
export function ConfirmButton({ question, confirmLabel = 'Yes', onConfirm, children, loading, ...rest }: ConfirmButtonProps) {
  const [asking, setAsking] = useState(false);
  if (asking && !loading) {
    return (
      <span className="inline-flex items-center gap-1" role="group" aria-label={question}>
        <span className="text-xs text-slate-600">{question}</span>
        <Button
          size="sm"
          variant="danger"
          autoFocus
          onClick={() => {
            setAsking(false);
            onConfirm();
          }}
        >
          {confirmLabel}
        </Button>
        <Button size="sm" variant="ghost" onClick={() => setAsking(false)}>
          Cancel
        </Button>
      </span>
    );
  }
  return (
    <Button {...rest} loading={loading} onClick={() => setAsking(true)}>
      {children}
    </Button>
  );
}
