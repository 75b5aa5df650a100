//! Who is online across the cluster, as a pure state machine: the registry feeds it this node's
//! connections coming and going, friendship changes and the other nodes' news, and carries out
//! the [`Effect`]s it returns (presence frames, [`OnlineUsers`] updates, cluster events). No clock is read here: each input that needs the time brings it.
//!
//! A user is online while any node holds a connection of it; each node tells the others its own
//! users ([`Event::Presence`], and the whole picture in [`Event::State`]), and a node silent for
//! [`NODE_TIMEOUT`] is taken for gone with its users.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::link::{Event, NodeId};
use crate::ids::UserId;

/// A node silent this long is gone: its users are offline.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(15);

/// The users online anywhere (on this node or, with Redis, on another), as the registry last
/// decided. Only the registry writes it, at the moment it tells the user's friends; readers
/// take a read lock for one look-up each, where a question to the actor would cost two
/// thread wake-ups on every list of users.
#[derive(Default)]
pub struct OnlineUsers(RwLock<FxHashSet<UserId>>);

impl OnlineUsers {
    /// Which of `users` are online.
    pub fn among(&self, users: impl IntoIterator<Item = UserId>) -> HashSet<UserId> {
        let online = self.0.read().unwrap_or_else(PoisonError::into_inner);
        users.into_iter().filter(|user| online.contains(user)).collect()
    }

    /// Records what presence decided (the registry only).
    pub(super) fn set(&self, user: UserId, online: bool) {
        let mut set = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if online {
            set.insert(user);
        } else {
            set.remove(&user);
        }
    }
}

/// What the registry does on presence's behalf.
#[derive(Debug)]
pub(super) enum Effect {
    /// `user_id` came online or went offline everywhere: record it and tell its `friends` here.
    Announce { user_id: UserId, online: bool, friends: Vec<UserId> },
    /// Tell the connections of `to` here that `user_id` is shown online (or no longer shown).
    Show { to: UserId, user_id: UserId, online: bool },
    /// Tell the other nodes.
    Publish(Event),
}

/// What this node knows of another node.
struct RemoteNode {
    /// Its online users and their friends (to tell them when the user goes offline).
    users: HashMap<UserId, Vec<UserId>>,
    last_heard: Instant,
}

/// The presence bookkeeping of one node.
#[derive(Default)]
pub(super) struct Presence {
    /// Users with a connection on this node, with their friends.
    local: FxHashMap<UserId, HashSet<UserId>>,
    /// Other nodes and their online users.
    remote: HashMap<NodeId, RemoteNode>,
    /// On how many other nodes each user is online.
    remote_online: FxHashMap<UserId, u32>,
}

impl Presence {
    /// Online on this node or on another.
    pub fn is_online(&self, user: UserId) -> bool {
        self.local.contains_key(&user) || self.remote_online.contains_key(&user)
    }

    /// The friends of local user `user` online now (what its new connection is told first).
    pub fn online_friends(&self, user: UserId) -> Vec<UserId> {
        let Some(friends) = self.local.get(&user) else { return Vec::new() };
        friends.iter().copied().filter(|friend| self.is_online(*friend)).collect()
    }

    /// A connection of `user` opened here; `friends` (read at connect time) replace what was
    /// known. Its first connection here makes it online.
    pub fn connected(&mut self, user: UserId, friends: Vec<UserId>) -> Vec<Effect> {
        let came_online = self.local.insert(user, friends.into_iter().collect()).is_none();
        if !came_online {
            return Vec::new();
        }
        let friends = self.local_friends(user);
        let mut effects = vec![Effect::Publish(Event::Presence { user_id: user, online: true, friends: friends.clone() })];
        if !self.remote_online.contains_key(&user) {
            effects.push(Effect::Announce { user_id: user, online: true, friends });
        }
        effects
    }

    /// The last connection of `user` here closed.
    pub fn went_offline(&mut self, user: UserId) -> Vec<Effect> {
        let Some(friends) = self.local.remove(&user) else { return Vec::new() };
        let friends: Vec<UserId> = friends.into_iter().collect();
        let mut effects = vec![Effect::Publish(Event::Presence { user_id: user, online: false, friends: friends.clone() })];
        if !self.remote_online.contains_key(&user) {
            effects.push(Effect::Announce { user_id: user, online: false, friends });
        }
        effects
    }

    /// Two users became friends (or stopped being friends), wherever they are connected.
    pub fn friendship(&mut self, a: UserId, b: UserId, friends: bool) -> Vec<Effect> {
        for (user, other) in [(a, b), (b, a)] {
            if let Some(list) = self.local.get_mut(&user) {
                if friends {
                    list.insert(other);
                } else {
                    list.remove(&other);
                }
            }
            for node in self.remote.values_mut() {
                if let Some(list) = node.users.get_mut(&user) {
                    list.retain(|f| *f != other);
                    if friends {
                        list.push(other);
                    }
                }
            }
        }
        // Both online: each learns the other's presence, or that it is no longer shown (each
        // node tells its own connections).
        if self.is_online(a) && self.is_online(b) {
            vec![Effect::Show { to: a, user_id: b, online: friends }, Effect::Show { to: b, user_id: a, online: friends }]
        } else {
            Vec::new()
        }
    }

    /// This node's whole state for the others; `reply` asks them for theirs (on (re)joining).
    pub fn share_state(&self, reply: bool) -> Vec<Effect> {
        vec![self.state(reply)]
    }

    /// Presence news from `node` (`Presence`, `State`, `Alive` or `Bye`), heard at `now`.
    pub fn node_news(&mut self, node: NodeId, news: Event, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let known = self.remote.contains_key(&node);
        match self.remote.get_mut(&node) {
            Some(entry) => entry.last_heard = now,
            None => {
                self.remote.insert(node.clone(), RemoteNode { users: HashMap::new(), last_heard: now });
            }
        }
        if !known && matches!(news, Event::Presence { .. } | Event::Alive) {
            // A node this one has not heard from (it joined, or came back, while this one was
            // cut off or had swept it): ask everyone for their state.
            effects.push(self.state(true));
        }
        match news {
            Event::Presence { user_id, online, friends } => self.set_remote_user(&node, user_id, online.then_some(friends), &mut effects),
            Event::State { users, reply } => {
                self.set_node_users(&node, users.into_iter().collect(), &mut effects);
                if reply {
                    effects.push(self.state(false));
                }
            }
            Event::Bye => self.forget_node(&node, &mut effects),
            // `Alive` only refreshes `last_heard`; room events never come this way.
            _ => {}
        }
        effects
    }

    /// Forgets the nodes not heard from for [`NODE_TIMEOUT`] at `now`: their users are offline.
    pub fn sweep(&mut self, now: Instant) -> Vec<Effect> {
        let gone: Vec<NodeId> = self
            .remote
            .iter()
            .filter(|(_, node)| now.saturating_duration_since(node.last_heard) > NODE_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        let mut effects = Vec::new();
        for node in gone {
            tracing::warn!(node, "no word from a node: its users are offline");
            self.forget_node(&node, &mut effects);
        }
        effects
    }

    fn local_friends(&self, user: UserId) -> Vec<UserId> {
        self.local.get(&user).map(|friends| friends.iter().copied().collect()).unwrap_or_default()
    }

    /// This node's online users and their friends, for the others.
    fn state(&self, reply: bool) -> Effect {
        let users = self.local.iter().map(|(user, friends)| (*user, friends.iter().copied().collect())).collect();
        Effect::Publish(Event::State { users, reply })
    }

    /// A node left or went silent: its users are offline here.
    fn forget_node(&mut self, node: &NodeId, effects: &mut Vec<Effect>) {
        self.set_node_users(node, HashMap::new(), effects);
        self.remote.remove(node);
    }

    /// Replaces what `node` holds.
    fn set_node_users(&mut self, node: &NodeId, mut users: HashMap<UserId, Vec<UserId>>, effects: &mut Vec<Effect>) {
        let Some(entry) = self.remote.get(node) else { return };
        let gone: Vec<UserId> = entry.users.keys().filter(|user| !users.contains_key(user)).copied().collect();
        for user in gone {
            self.set_remote_user(node, user, None, effects);
        }
        for (user, friends) in users.drain() {
            self.set_remote_user(node, user, Some(friends), effects);
        }
    }

    /// Records `user` as online on `node` with these friends (`Some`) or not (`None`), telling
    /// its friends here when that changes whether it is online anywhere.
    fn set_remote_user(&mut self, node: &NodeId, user: UserId, friends: Option<Vec<UserId>>, effects: &mut Vec<Effect>) {
        let Some(entry) = self.remote.get_mut(node) else { return };
        match friends {
            Some(friends) => {
                if entry.users.insert(user, friends.clone()).is_some() {
                    return;
                }
                let count = self.remote_online.entry(user).or_default();
                *count += 1;
                if *count == 1 && !self.local.contains_key(&user) {
                    effects.push(Effect::Announce { user_id: user, online: true, friends });
                }
            }
            None => {
                let Some(friends) = entry.users.remove(&user) else { return };
                let count = self.remote_online.entry(user).or_default();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.remote_online.remove(&user);
                    if !self.local.contains_key(&user) {
                        effects.push(Effect::Announce { user_id: user, online: false, friends });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THERE: &str = "there";
    const ELSEWHERE: &str = "elsewhere";

    fn ids(users: &[i64]) -> Vec<UserId> {
        users.iter().copied().map(UserId).collect()
    }

    fn presence(user_id: i64, online: bool, friends: &[i64]) -> Event {
        Event::Presence { user_id: UserId(user_id), online, friends: ids(friends) }
    }

    fn state(users: &[(i64, &[i64])]) -> Event {
        Event::State { users: users.iter().map(|(user, friends)| (UserId(*user), ids(friends))).collect(), reply: false }
    }

    /// The announcements among `effects`, as (user, online, friends sorted).
    fn announced(effects: &[Effect]) -> Vec<(i64, bool, Vec<i64>)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Announce { user_id, online, friends } => {
                    let mut friends: Vec<i64> = friends.iter().map(|f| f.get()).collect();
                    friends.sort_unstable();
                    Some((user_id.get(), *online, friends))
                }
                _ => None,
            })
            .collect()
    }

    /// Whether `effects` publish a `State` that asks the other nodes for theirs.
    fn asks_for_state(effects: &[Effect]) -> bool {
        effects.iter().any(|effect| matches!(effect, Effect::Publish(Event::State { reply: true, .. })))
    }

    #[test]
    fn a_user_online_on_another_node_is_online_here_and_announced_to_local_friends_once() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.connected(UserId(1), ids(&[7]));
        let first = presence_here.node_news(THERE.into(), presence(7, true, &[1]), now);
        assert_eq!(announced(&first), [(7, true, vec![1])]);
        assert!(presence_here.is_online(UserId(7)));
        assert_eq!(presence_here.online_friends(UserId(1)), ids(&[7]));
        // The same news again, or in the node's whole state, changes nothing.
        assert!(announced(&presence_here.node_news(THERE.into(), presence(7, true, &[1]), now)).is_empty());
        assert!(announced(&presence_here.node_news(THERE.into(), state(&[(7, &[1])]), now)).is_empty());
    }

    #[test]
    fn a_user_online_on_two_nodes_stays_online_until_both_drop() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        assert_eq!(announced(&presence_here.node_news(THERE.into(), presence(7, true, &[1]), now)), [(7, true, vec![1])]);
        assert!(announced(&presence_here.node_news(ELSEWHERE.into(), presence(7, true, &[1]), now)).is_empty());
        assert!(announced(&presence_here.node_news(THERE.into(), presence(7, false, &[1]), now)).is_empty());
        assert!(presence_here.is_online(UserId(7)));
        assert_eq!(announced(&presence_here.node_news(ELSEWHERE.into(), presence(7, false, &[1]), now)), [(7, false, vec![1])]);
        assert!(!presence_here.is_online(UserId(7)));
    }

    #[test]
    fn a_local_user_also_online_elsewhere_is_announced_only_when_it_first_comes_and_last_goes() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        let connected = presence_here.connected(UserId(7), ids(&[1]));
        assert!(matches!(connected.first(), Some(Effect::Publish(Event::Presence { user_id: UserId(7), online: true, .. }))));
        assert_eq!(announced(&connected), [(7, true, vec![1])]);
        // A second connection here is not news.
        assert!(presence_here.connected(UserId(7), ids(&[1])).is_empty());
        assert!(announced(&presence_here.node_news(THERE.into(), presence(7, true, &[1]), now)).is_empty());
        // Gone from here, still there: the other nodes hear of it, the friends here do not.
        let left = presence_here.went_offline(UserId(7));
        assert!(matches!(left.as_slice(), [Effect::Publish(Event::Presence { user_id: UserId(7), online: false, .. })]));
        assert!(presence_here.is_online(UserId(7)));
        assert_eq!(announced(&presence_here.node_news(THERE.into(), presence(7, false, &[1]), now)), [(7, false, vec![1])]);
    }

    #[test]
    fn a_node_silent_past_node_timeout_is_swept_and_its_users_go_offline() {
        let heard = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.node_news(THERE.into(), state(&[(7, &[1]), (8, &[2])]), heard);
        assert!(presence_here.sweep(heard + NODE_TIMEOUT).is_empty());
        assert!(presence_here.is_online(UserId(7)));
        let mut gone = announced(&presence_here.sweep(heard + NODE_TIMEOUT + Duration::from_millis(1)));
        gone.sort_unstable();
        assert_eq!(gone, [(7, false, vec![1]), (8, false, vec![2])]);
        assert!(!presence_here.is_online(UserId(7)) && !presence_here.is_online(UserId(8)));
    }

    #[test]
    fn a_node_that_comes_back_triggers_a_state_request_and_its_users_come_back() {
        let heard = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.connected(UserId(1), ids(&[7]));
        assert!(asks_for_state(&presence_here.node_news(THERE.into(), Event::Alive, heard)));
        presence_here.node_news(THERE.into(), state(&[(7, &[1])]), heard);
        let swept_at = heard + NODE_TIMEOUT * 2;
        assert_eq!(announced(&presence_here.sweep(swept_at)), [(7, false, vec![1])]);
        // It speaks again: this node asks everyone for their state, with its own users in it.
        let back = presence_here.node_news(THERE.into(), Event::Alive, swept_at);
        assert!(matches!(back.as_slice(), [Effect::Publish(Event::State { users, reply: true })] if users == &[(UserId(1), ids(&[7]))]));
        assert_eq!(announced(&presence_here.node_news(THERE.into(), state(&[(7, &[1])]), swept_at)), [(7, true, vec![1])]);
        // A presence change from a node swept meanwhile asks too, and counts.
        assert_eq!(announced(&presence_here.sweep(swept_at + NODE_TIMEOUT * 2)), [(7, false, vec![1])]);
        let news = presence_here.node_news(THERE.into(), presence(7, true, &[1]), swept_at + NODE_TIMEOUT * 2);
        assert!(asks_for_state(&news));
        assert_eq!(announced(&news), [(7, true, vec![1])]);
        // A node already known does not ask again.
        assert!(!asks_for_state(&presence_here.node_news(THERE.into(), Event::Alive, swept_at + NODE_TIMEOUT * 2)));
    }

    #[test]
    fn a_state_replaces_what_a_node_holds_and_a_replying_state_is_answered() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.connected(UserId(1), ids(&[7, 8]));
        presence_here.node_news(THERE.into(), state(&[(7, &[1])]), now);
        let replaced = presence_here.node_news(THERE.into(), state(&[(8, &[1])]), now);
        assert_eq!(announced(&replaced), [(7, false, vec![1]), (8, true, vec![1])]);
        assert!(!presence_here.is_online(UserId(7)) && presence_here.is_online(UserId(8)));
        let asked = presence_here.node_news(THERE.into(), Event::State { users: vec![(UserId(8), ids(&[1]))], reply: true }, now);
        assert!(matches!(asked.as_slice(), [Effect::Publish(Event::State { reply: false, .. })]));
    }

    #[test]
    fn bye_forgets_the_node() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.node_news(THERE.into(), presence(7, true, &[1]), now);
        assert_eq!(announced(&presence_here.node_news(THERE.into(), Event::Bye, now)), [(7, false, vec![1])]);
        assert!(!presence_here.is_online(UserId(7)));
        // Forgotten: its next word is a node this one has not heard from.
        assert!(asks_for_state(&presence_here.node_news(THERE.into(), Event::Alive, now)));
    }

    #[test]
    fn friendship_changes_update_remote_friend_lists_and_show_both_when_online() {
        let now = Instant::now();
        let mut presence_here = Presence::default();
        presence_here.connected(UserId(1), ids(&[]));
        presence_here.node_news(THERE.into(), presence(7, true, &[3]), now);
        let shown = presence_here.friendship(UserId(1), UserId(7), true);
        assert!(matches!(
            shown.as_slice(),
            [
                Effect::Show { to: UserId(1), user_id: UserId(7), online: true },
                Effect::Show { to: UserId(7), user_id: UserId(1), online: true }
            ]
        ));
        assert_eq!(presence_here.online_friends(UserId(1)), ids(&[7]));
        // The remote user's list now has 1 (and, after unfriending 3, only 1).
        assert!(presence_here.friendship(UserId(7), UserId(3), false).is_empty());
        assert_eq!(announced(&presence_here.node_news(THERE.into(), presence(7, false, &[]), now)), [(7, false, vec![1])]);
        // Unfriending while both are online hides each from the other.
        presence_here.node_news(THERE.into(), presence(7, true, &[1]), now);
        let hidden = presence_here.friendship(UserId(7), UserId(1), false);
        assert!(matches!(
            hidden.as_slice(),
            [
                Effect::Show { to: UserId(7), user_id: UserId(1), online: false },
                Effect::Show { to: UserId(1), user_id: UserId(7), online: false }
            ]
        ));
        assert!(presence_here.online_friends(UserId(1)).is_empty());
    }
}
