import { type FormEvent, useState } from 'react';
import { Alert } from '@/components/ui/alert';
import { Avatar } from '@/components/ui/avatar';
import { Pill } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { Field, Input, Textarea } from '@/components/ui/field';
import { errorMessage, isApiError } from '@/lib/api-error';
import { displayName } from '@/lib/format';
import type { User } from '@/types/models';
import { useResendVerification } from '../api/resend-verification';
import { useUpdateProfile } from '../api/update-profile';

const joined = new Intl.DateTimeFormat(undefined, { dateStyle: 'long' });

export function ProfileDetails({ user }: { user: User }) {
  const [editing, setEditing] = useState(false);
  const resend = useResendVerification();

  return (
    <section aria-labelledby="profile-heading" className="rounded-xl bg-white p-5 ring-1 ring-slate-200">
      <div className="flex items-start gap-4">
        <Avatar name={displayName(user)} colorKey={user.username} size="lg" />
        <div className="min-w-0 flex-1">
          <h2 id="profile-heading" className="truncate text-lg font-semibold text-slate-900">
            {displayName(user)}
          </h2>
          <p className="truncate text-sm text-slate-500">@{user.username}</p>
          <p className="mt-1 flex flex-wrap items-center gap-2 text-sm text-slate-600">
            <span className="truncate">{user.email}</span>
            {user.email_verified ? <Pill tone="green">Verified</Pill> : <Pill tone="amber">Not verified</Pill>}
          </p>
          <p className="mt-1 text-xs text-slate-500">Member since {joined.format(new Date(user.date_joined))}</p>
        </div>
        {!editing && (
          <Button variant="secondary" size="sm" onClick={() => setEditing(true)}>
            Edit
          </Button>
        )}
      </div>

      {!user.email_verified && (
        <Alert tone="warning" className="mt-4">
          Please confirm your email address with the link we sent you.{' '}
          {resend.isSuccess ? (
            <span className="font-medium">A new link is on its way.</span>
          ) : (
            <button type="button" className="font-medium underline disabled:opacity-50" disabled={resend.isPending} onClick={() => resend.mutate()}>
              {resend.isPending ? 'Sending…' : 'Send the link again'}
            </button>
          )}
          {resend.isError && <span className="block text-red-700">{errorMessage(resend.error)}</span>}
        </Alert>
      )}

      {editing ? (
        <ProfileForm user={user} onDone={() => setEditing(false)} />
      ) : (
        <div className="mt-4">
          <h3 className="text-sm font-medium text-slate-700">About</h3>
          <p className="mt-1 text-sm whitespace-pre-wrap text-slate-600">{user.bio || <span className="text-slate-400">Nothing here yet.</span>}</p>
        </div>
      )}
    </section>
  );
}

function ProfileForm({ user, onDone }: { user: User; onDone: () => void }) {
  const [form, setForm] = useState({ username: user.username, first_name: user.first_name, last_name: user.last_name, bio: user.bio });
  const update = useUpdateProfile();
  const error = update.error;
  const fieldError = (name: string) => (isApiError(error) ? error.field(name) : undefined);
  const set = (key: keyof typeof form, value: string) => setForm((f) => ({ ...f, [key]: value }));

  function submit(event: FormEvent) {
    event.preventDefault();
    update.mutate(
      { username: form.username.trim(), first_name: form.first_name.trim(), last_name: form.last_name.trim(), bio: form.bio },
      { onSuccess: onDone },
    );
  }

  return (
    <form onSubmit={submit} className="mt-5 space-y-4" noValidate>
      {error && !(isApiError(error) && Object.keys(error.fields).length > 0) && <Alert tone="error">{errorMessage(error)}</Alert>}
      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="First name" error={fieldError('first_name')}>
          {(p) => <Input {...p} value={form.first_name} onChange={(e) => set('first_name', e.target.value)} />}
        </Field>
        <Field label="Last name" error={fieldError('last_name')}>
          {(p) => <Input {...p} value={form.last_name} onChange={(e) => set('last_name', e.target.value)} />}
        </Field>
      </div>
      <Field label="Username" error={fieldError('username')}>
        {(p) => <Input {...p} value={form.username} onChange={(e) => set('username', e.target.value)} />}
      </Field>
      <Field label="About you" error={fieldError('bio')} hint={`${form.bio.length}/500`}>
        {(p) => <Textarea {...p} rows={4} maxLength={500} value={form.bio} onChange={(e) => set('bio', e.target.value)} />}
      </Field>
      <div className="flex justify-end gap-2">
        <Button variant="ghost" onClick={onDone} disabled={update.isPending}>
          Cancel
        </Button>
        <Button type="submit" loading={update.isPending}>
          Save
        </Button>
      </div>
    </form>
  );
}
