//! Online flags on users, as the real-time layer counts them (every node's connections).

use crate::dto::UserPublic;
use crate::state::AppState;

/// Sets `online` on each user.
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
