import { Button } from '@/components/ui/button';
import { ConfirmButton } from '@/components/ui/confirm-button';
import { EmptyState, ErrorState, LoadingState } from '@/components/ui/states';
import { errorMessage } from '@/lib/api-error';
import { shortTime } from '@/lib/format';
import { useBlockUser, useCancelFriendRequest, useRespondFriendRequest } from '../api/contact-actions';
import { useFriendRequests } from '../api/get-friend-requests';
import { PersonRow } from './person-row';

export function FriendRequests() {
  const requests = useFriendRequests();
  const respond = useRespondFriendRequest();
  const cancel = useCancelFriendRequest();
  const block = useBlockUser();

  if (requests.isPending) return <LoadingState label="Loading requests…" />;
  if (requests.isError) return <ErrorState error={requests.error} onRetry={() => void requests.refetch()} />;
  const { received, sent } = requests.data;
  const actionError = respond.error ?? cancel.error ?? block.error;

  return (
    <div className="divide-y divide-slate-200">
      {actionError && <p className="px-4 py-3 text-sm text-red-700" role="alert">{errorMessage(actionError)}</p>}
      <section aria-labelledby="received-heading">
        <h3 id="received-heading" className="bg-slate-50 px-4 py-2 text-xs font-semibold tracking-wide text-slate-500 uppercase">
          Received ({received.length})
        </h3>
        {received.length === 0 ? (
          <p className="px-4 py-4 text-sm text-slate-500">No one is waiting for your answer.</p>
        ) : (
          <ul className="divide-y divide-slate-100" aria-label="Received requests">
            {received.map((request) => (
              <PersonRow key={request.id} user={request.sender} meta={` · ${shortTime(request.created_at)}`}>
                <Button
                  size="sm"
                  loading={respond.isPending && respond.variables.id === request.id && respond.variables.action === 'accept'}
                  disabled={respond.isPending}
                  onClick={() => respond.mutate({ id: request.id, action: 'accept' })}
                >
                  Accept
                </Button>
                <Button
                  size="sm"
                  variant="ghost"
                  loading={respond.isPending && respond.variables.id === request.id && respond.variables.action === 'reject'}
                  disabled={respond.isPending}
                  onClick={() => respond.mutate({ id: request.id, action: 'reject' })}
                >
                  Reject
                </Button>
                <ConfirmButton
                  size="sm"
                  variant="ghost"
                  question={`Block ${request.sender.username}?`}
                  confirmLabel="Block"
                  loading={block.isPending && block.variables === request.sender.id}
                  onConfirm={() => block.mutate(request.sender.id)}
                >
                  Block
                </ConfirmButton>
              </PersonRow>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="sent-heading">
        <h3 id="sent-heading" className="bg-slate-50 px-4 py-2 text-xs font-semibold tracking-wide text-slate-500 uppercase">
          Sent ({sent.length})
        </h3>
        {sent.length === 0 ? (
          <EmptyState title="No pending requests" className="p-4" />
        ) : (
          <ul className="divide-y divide-slate-100" aria-label="Sent requests">
            {sent.map((request) => (
              <PersonRow key={request.id} user={request.receiver} meta={` · ${shortTime(request.created_at)}`}>
                <Button size="sm" variant="ghost" loading={cancel.isPending && cancel.variables === request.id} onClick={() => cancel.mutate(request.id)}>
                  Cancel request
                </Button>
              </PersonRow>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
