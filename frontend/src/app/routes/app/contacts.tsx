import { useNavigate, useSearchParams } from 'react-router';
import { Alert } from '@/components/ui/alert';
import { useOpenPrivateRoom } from '@/features/chat/api/room-actions';
import { type ContactTab, contactTabs, ContactsView } from '@/features/contacts/components/contacts-view';
import { useDocumentTitle } from '@/hooks/use-document-title';
import { errorMessage } from '@/lib/api-error';
import type { UserPublic } from '@/types/models';

export function ContactsRoute() {
  useDocumentTitle('Contacts');
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const openRoom = useOpenPrivateRoom();
  const requested = params.get('tab');
  const tab: ContactTab = contactTabs.includes(requested as ContactTab) ? (requested as ContactTab) : 'friends';

  function message(user: UserPublic) {
    openRoom.mutate(user.id, { onSuccess: (room) => navigate(`/chat/${room.id}`) });
  }

  return (
    <>
      {openRoom.isError && (
        <Alert tone="error" className="mx-auto mt-4 max-w-3xl">
          {errorMessage(openRoom.error)}
        </Alert>
      )}
      <ContactsView
        tab={tab}
        onTabChange={(next) => setParams(next === 'friends' ? {} : { tab: next }, { replace: true })}
        onMessage={message}
        messagingId={openRoom.isPending ? openRoom.variables : null}
      />
    </>
  );
}
