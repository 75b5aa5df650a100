import { useNavigate, useParams } from 'react-router';
import { ChatScreen } from '@/features/chat/components/chat-screen';
import { roomTitle } from '@/features/chat/components/room-avatar';
import { useRooms } from '@/features/chat/api/get-rooms';
import { useFriends } from '@/features/contacts/api/get-friends';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { useUser } from '@/lib/auth';

export function ChatRoute() {
  const { roomId } = useParams();
  const navigate = useNavigate();
  const friends = useFriends();
  const rooms = useRooms();
  const me = useUser().data;
  const id = roomId !== undefined && /^\d+$/.test(roomId) ? Number(roomId) : null;
  const room = id !== null ? rooms.data?.find((r) => r.id === id) : undefined;
  const unread = rooms.data?.reduce((sum, r) => sum + r.unread_count, 0) ?? 0;
  useDocumentTitle(`${unread > 0 ? `(${unread}) ` : ''}${room ? roomTitle(room, me?.id) : 'Chats'}`);

  return (
    <ChatScreen
      roomId={id}
      friendsSource={{ friends: friends.data, isLoading: friends.isPending }}
      contactsHref="/contacts?tab=find"
      onOpenRoom={(r) => navigate(`/chat/${r.id}`)}
      onLeftRoom={() => navigate('/chat', { replace: true })}
    />
  );
}
