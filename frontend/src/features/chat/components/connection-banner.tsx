import { useEffect, useState } from 'react';
import { Spinner } from '@/components/ui/spinner';
import { useConnectionStatus } from '@/lib/realtime/realtime-context';

/** Says so when live updates are not flowing (after a short grace period, to avoid flicker). */
export function ConnectionBanner() {
  const status = useConnectionStatus();
  const [show, setShow] = useState(false);
  const degraded = status === 'connecting';

  useEffect(() => {
    if (!degraded) {
      setShow(false);
      return;
    }
    const timer = setTimeout(() => setShow(true), 1500);
    return () => clearTimeout(timer);
  }, [degraded]);

  if (!show) return null;
  return (
    <div role="status" data-testid="connection-banner" className="flex items-center justify-center gap-2 bg-amber-50 px-3 py-1.5 text-xs font-medium text-amber-900">
      <Spinner className="[&_svg]:size-3.5" label="Reconnecting" />
      <span aria-hidden="true">Reconnecting… messages you write will be sent when the connection is back.</span>
    </div>
  );
}
