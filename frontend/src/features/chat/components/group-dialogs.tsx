import { type FormEvent, useState } from 'react';
import { Alert } from '@/components/ui/alert';
import { Avatar } from '@/components/ui/avatar';
import { Button } from '@/components/ui/button';
import { Dialog } from '@/components/ui/dialog';
import { Field, Input } from '@/components/ui/field';
import { EmptyState, LoadingState } from '@/components/ui/states';
import { errorMessage, isApiError } from '@/lib/api-error';
import { displayName } from '@/lib/format';
import type { Room, UserPublic } from '@/types/models';
import { useCreateGroup, useInviteToGroup } from '../api/room-actions';

export interface FriendsSource {
  friends: UserPublic[] | undefined;
  isLoading: boolean;
}

export function CreateGroupDialog({ open, onClose, onCreated, friendsSource }: { open: boolean; onClose: () => void; onCreated: (room: Room) => void; friendsSource: FriendsSource }) {
  const [name, setName] = useState('');
  const [selected, setSelected] = useState<number[]>([]);
  const create = useCreateGroup();
  const error = create.error;
  const { friends, isLoading } = friendsSource;

  function close() {
    setName('');
    setSelected([]);
    create.reset();
    onClose();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate(
      { name: name.trim(), memberIds: selected },
      {
        onSuccess: (room) => {
          close();
          onCreated(room);
        },
      },
    );
  }

  const toggle = (id: number) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));

  return (
    <Dialog open={open} onClose={close} title="New group">
      <form onSubmit={submit} className="space-y-4">
        {error && !(isApiError(error) && error.field('name')) && <Alert tone="error">{errorMessage(error)}</Alert>}
        <Field label="Group name" error={isApiError(error) ? error.field('name') : undefined}>
          {(p) => <Input {...p} autoFocus maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <fieldset>
          <legend className="text-sm font-medium text-slate-700">Friends to add</legend>
          {isLoading ? (
            <LoadingState label="Loading friends…" />
          ) : !friends || friends.length === 0 ? (
            <p className="mt-2 text-sm text-slate-500">Only friends can be added to a group. You can still create it and invite friends later.</p>
          ) : (
            <ul className="mt-2 max-h-60 space-y-1 overflow-y-auto">
              {friends.map((friend) => (
                <li key={friend.id}>
                  <label className="flex cursor-pointer items-center gap-3 rounded-lg px-2 py-1.5 hover:bg-slate-50">
                    <input type="checkbox" className="size-4 accent-indigo-600" checked={selected.includes(friend.id)} onChange={() => toggle(friend.id)} />
                    <Avatar name={displayName(friend)} colorKey={friend.username} size="sm" />
                    <span className="text-sm text-slate-800">{displayName(friend)}</span>
                    <span className="text-xs text-slate-500">@{friend.username}</span>
                  </label>
                </li>
              ))}
            </ul>
          )}
        </fieldset>
        <div className="flex justify-end gap-2">
          <Button variant="ghost" onClick={close}>
            Cancel
          </Button>
          <Button type="submit" loading={create.isPending} disabled={!name.trim()}>
            Create group
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

export function InviteDialog({ open, onClose, room, friendsSource }: { open: boolean; onClose: () => void; room: Room; friendsSource: FriendsSource }) {
  const invite = useInviteToGroup();
  const { friends, isLoading } = friendsSource;
  const memberIds = new Set(room.members.map((m) => m.id));
  const candidates = (friends ?? []).filter((f) => !memberIds.has(f.id));

  return (
    <Dialog
      open={open}
      onClose={() => {
        invite.reset();
        onClose();
      }}
      title={`Invite to ${room.name}`}
    >
      {invite.error && <Alert tone="error" className="mb-3">{errorMessage(invite.error)}</Alert>}
      {isLoading ? (
        <LoadingState label="Loading friends…" />
      ) : candidates.length === 0 ? (
        <EmptyState title="No one to invite">All your friends are already in this group, or you have no friends yet.</EmptyState>
      ) : (
        <ul className="max-h-72 space-y-1 overflow-y-auto">
          {candidates.map((friend) => (
            <li key={friend.id} className="flex items-center gap-3 rounded-lg px-2 py-1.5">
              <Avatar name={displayName(friend)} colorKey={friend.username} size="sm" />
              <span className="min-w-0 flex-1 truncate text-sm text-slate-800">{displayName(friend)}</span>
              <Button size="sm" loading={invite.isPending && invite.variables.userId === friend.id} onClick={() => invite.mutate({ groupId: room.id, userId: friend.id })}>
                Invite
              </Button>
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}

export function MembersDialog({ open, onClose, room, meId }: { open: boolean; onClose: () => void; room: Room; meId: number | undefined }) {
  return (
    <Dialog open={open} onClose={onClose} title={`${room.members.length} members`}>
      <ul className="max-h-80 space-y-1 overflow-y-auto">
        {room.members.map((member) => (
          <li key={member.id} className="flex items-center gap-3 rounded-lg px-2 py-1.5">
            <Avatar name={displayName(member)} colorKey={member.username} size="sm" online={member.id === meId ? undefined : member.online} />
            <span className="min-w-0 flex-1 truncate text-sm text-slate-800">
              {displayName(member)} {member.id === meId && <span className="text-slate-500">(you)</span>}
            </span>
            {room.owner_id === member.id && <span className="text-xs text-slate-500">owner</span>}
          </li>
        ))}
      </ul>
    </Dialog>
  );
}
