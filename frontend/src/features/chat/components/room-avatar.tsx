import { Avatar } from '@/components/ui/avatar';
import { displayName } from '@/lib/format';
import type { Room } from '@/types/models';
import { otherMember } from '../utils/rooms-state';

export function RoomAvatar({ room, meId, size = 'md' }: { room: Room; meId: number | undefined; size?: 'sm' | 'md' | 'lg' }) {
  if (room.kind === 'private') {
    const other = otherMember(room, meId);
    return <Avatar name={other ? displayName(other) : room.name} colorKey={other?.username ?? room.name} online={other?.online ?? false} size={size} />;
  }
  return <Avatar name={room.name} colorKey={`group-${room.id}`} size={size} />;
}

/** What to call a room: the group's name, or the other person's name for a private chat. */
export function roomTitle(room: Room, meId: number | undefined): string {
  if (room.kind === 'group') return room.name;
  const other = otherMember(room, meId);
  return other ? displayName(other) : room.name;
}
