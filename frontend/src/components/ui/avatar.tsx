import { cn, initials } from '@/lib/format';

const palette = ['bg-indigo-500', 'bg-sky-500', 'bg-emerald-500', 'bg-amber-500', 'bg-rose-500', 'bg-violet-500', 'bg-teal-500', 'bg-orange-500'];

function colorFor(key: string): string {
  let hash = 0;
  for (const ch of key) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return palette[Math.abs(hash) % palette.length];
}

interface AvatarProps {
  name: string;
  /** Stable key for the colour (username or room id). */
  colorKey?: string;
  online?: boolean;
  size?: 'sm' | 'md' | 'lg';
  className?: string;
}

const sizes = { sm: 'size-8 text-xs', md: 'size-10 text-sm', lg: 'size-16 text-xl' };

export function Avatar({ name, colorKey, online, size = 'md', className }: AvatarProps) {
  return (
    <span className={cn('relative inline-flex shrink-0', className)}>
      <span
        aria-hidden="true"
        className={cn('inline-flex items-center justify-center rounded-full font-semibold text-white select-none', sizes[size], colorFor(colorKey ?? name))}
      >
        {initials(name)}
      </span>
      {online !== undefined && <PresenceDot online={online} className="absolute right-0 bottom-0" />}
    </span>
  );
}

export function PresenceDot({ online, className }: { online: boolean; className?: string }) {
  return (
    <span
      title={online ? 'Online' : 'Offline'}
      data-testid="presence-dot"
      data-online={online}
      className={cn('block size-3 rounded-full ring-2 ring-white', online ? 'bg-emerald-500' : 'bg-slate-300', className)}
    >
      <span className="sr-only">{online ? 'online' : 'offline'}</span>
    </span>
  );
}
