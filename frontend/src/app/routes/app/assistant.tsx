import { useNavigate, useParams } from 'react-router';
import { AssistantView } from '@/features/assistant/components/assistant-view';
import { useDocumentTitle } from '@/hooks/use-document-title';

export function AssistantRoute() {
  useDocumentTitle('Assistant');
  const { conversationId } = useParams();
  const navigate = useNavigate();
  return (
    <AssistantView
      conversationId={conversationId ?? null}
      onConversationChange={(id) => navigate(id === null ? '/assistant' : `/assistant/${encodeURIComponent(id)}`, { replace: id !== null && conversationId === undefined })}
    />
  );
}
