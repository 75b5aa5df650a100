//! Online flags on users, as the real-time layer counts them (every node's connections), shown
//! only to whom presence is visible: a user's friends (a block ends a friendship, so never
//! across one) and the user themself. Strangers, fellow members of a group and people found by
//! a search see `online: false`.

use std::collections::HashSet;

use crate::dto::UserPublic;
use crate::ids::UserId;
use crate::state::AppState;

/// Sets `online` on each user, as `viewer` may see it: `friends` are the viewer's friends among
/// them; everyone else shows offline.
pub fn fill_online_seen_by<'a>(
    state: &AppState,
    viewer: UserId,
    friends: &HashSet<UserId>,
    users: impl IntoIterator<Item = &'a mut UserPublic>,
) {
    let mut shown: Vec<&mut UserPublic> = Vec::new();
    for user in users {
        if user.id == viewer || friends.contains(&user.id) {
            shown.push(user);
        } else {
            user.online = false;
        }
    }
    fill_online(state, shown);
}

/// Sets `online` on each user, whoever looks (for lists of the viewer's own friends).
pub fn fill_online<'a>(state: &AppState, users: impl IntoIterator<Item = &'a mut UserPublic>) {
    let mut users: Vec<&mut UserPublic> = users.into_iter().collect();
    if users.is_empty() {
        return;
    }
    let online = state.live.online(&mut users.iter().map(|u| u.id));
    for user in users.iter_mut() {
        user.online = online.contains(&user.id);
    }
}
