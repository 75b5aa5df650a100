//! Contacts: friend requests, friendships, blocks and people search. [`blocked_between`] is
//! the one rule every area asks before two users may interact.

use std::collections::{HashMap, HashSet};

use crate::db::models::{FriendRequest, PublicUserRow};
use crate::db::users::NameKey;
use crate::db::{self, DbConn, write_tx, write_tx_retrying_conflicts};
use crate::domain::RequestStatus;
use crate::domain::{EmailAddress, search_key};
use crate::dto::{FoundUser, FriendRequestLists, FriendRequestView, Relation, UserPublic, utc};
use crate::error::{ApiError, ApiResult, Reason};
use crate::ids::UserId;
use crate::ports::DomainEvent;
use crate::ratelimit;
use crate::services::presence::{fill_online, fill_online_seen_by};
use crate::state::State;

/// How the receiver answers a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
}

/// A people search: a prefix of a username or name, or an exact email.
#[derive(Debug, Clone)]
pub struct Search {
    pub text: String,
    pub limit: i64,
    pub offset: i64,
}

/// Tells both users' connections (on every node) that their friendship began or ended.
fn announce_friendship(state: &State, a: UserId, b: UserId, friends: bool) {
    state.live.announce(DomainEvent::FriendshipChanged { a, b, friends });
}

fn views(conn: &mut DbConn, requests: Vec<FriendRequest>) -> ApiResult<Vec<FriendRequestView>> {
    let ids: Vec<UserId> = requests.iter().flat_map(|r| [r.sender_id, r.receiver_id]).collect();
    let rows = db::users::public_rows(conn, &ids)?;
    let public = |id: UserId| {
        rows.get(&id)
            .cloned()
            .map(|row| UserPublic::new(row, false))
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("friend request names missing user {id}")))
    };
    requests
        .into_iter()
        .map(|r| {
            Ok(FriendRequestView {
                id: r.id,
                sender: public(r.sender_id)?,
                receiver: public(r.receiver_id)?,
                status: r.status,
                created_at: utc(r.created_at),
            })
        })
        .collect()
}

fn view(conn: &mut DbConn, request: FriendRequest) -> ApiResult<FriendRequestView> {
    views(conn, vec![request])?.pop().ok_or_else(|| ApiError::internal(anyhow::anyhow!("empty view")))
}

/// Sends a friend request from `caller` to `receiver_id`. If the receiver already asked the
/// caller, that request is accepted instead and both become friends.
pub async fn send_request(state: &State, caller: UserId, receiver_id: UserId) -> ApiResult<FriendRequestView> {
    if caller == receiver_id {
        return Err(ApiError::invalid_field("receiver_id", "you cannot send a friend request to yourself"));
    }
    state.limits.check(ratelimit::FRIEND_REQUESTS_PER_USER, &caller.to_string()).await?;
    state.limits.peek(ratelimit::FRIEND_REQUEST_AFTER_CLOSE, &request_pair(caller, receiver_id)).await?;
    let view = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 3, |conn| {
                db::users::active_public(conn, receiver_id)?;
                if db::contacts::blocked_between(conn, caller, receiver_id)? {
                    return Err(ApiError::forbidden(Reason::Blocked, "you cannot send a friend request to this user"));
                }
                if db::contacts::are_friends(conn, caller, receiver_id)? {
                    return Err(ApiError::Conflict("you are already friends".into()));
                }
                if db::friend_requests::pending_from(conn, caller, receiver_id)?.is_some() {
                    return Err(ApiError::Conflict("a friend request to this user is already pending".into()));
                }
                if let Some(theirs) = db::friend_requests::pending_from(conn, receiver_id, caller)? {
                    db::friend_requests::settle(conn, theirs.id, RequestStatus::Accepted)?;
                    db::contacts::befriend(conn, caller, receiver_id)?;
                    let accepted =
                        db::friend_requests::find(conn, theirs.id)?.ok_or_else(|| ApiError::NotFound("friend request not found".into()))?;
                    return view(conn, accepted);
                }
                // The partial unique index on the pair turns a simultaneous request the other
                // way into a unique violation; the retry then finds it and accepts it.
                let id = db::friend_requests::insert_pending(conn, caller, receiver_id)?;
                let stored = db::friend_requests::find(conn, id)?.ok_or_else(|| ApiError::NotFound("friend request not found".into()))?;
                view(conn, stored)
            })
        })
        .await?;
    if view.status == RequestStatus::Accepted {
        announce_friendship(state, caller, receiver_id, true);
    }
    Ok(with_presence(state, caller, view))
}

/// Fills the online flags of a request's two users as `viewer` sees them: the other one's only
/// once the request made them friends.
fn with_presence(state: &State, viewer: UserId, mut view: FriendRequestView) -> FriendRequestView {
    let friends: HashSet<UserId> =
        if view.status == RequestStatus::Accepted { HashSet::from([view.sender.id, view.receiver.id]) } else { HashSet::new() };
    fill_online_seen_by(state, viewer, &friends, [&mut view.sender, &mut view.receiver]);
    view
}

/// Pending requests the caller received and sent, newest first.
pub async fn pending_requests(state: &State, caller: UserId) -> ApiResult<FriendRequestLists> {
    let mut lists = state
        .db
        .run(move |conn| {
            let received = db::friend_requests::pending_received(conn, caller)?;
            let sent = db::friend_requests::pending_sent(conn, caller)?;
            Ok(FriendRequestLists { received: views(conn, received)?, sent: views(conn, sent)? })
        })
        .await?;
    let users = lists.received.iter_mut().chain(lists.sent.iter_mut()).flat_map(|r| [&mut r.sender, &mut r.receiver]);
    fill_online_seen_by(state, caller, &HashSet::new(), users);
    Ok(lists)
}

/// The receiver accepts or rejects a pending request. Only the receiver may answer; a request
/// answered already is a conflict.
pub async fn answer_request(state: &State, caller: UserId, request_id: i64, answer: Answer) -> ApiResult<FriendRequestView> {
    let view = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let request =
                    db::friend_requests::find(conn, request_id)?.ok_or_else(|| ApiError::NotFound("friend request not found".into()))?;
                if request.receiver_id != caller {
                    return Err(if request.sender_id == caller {
                        ApiError::forbidden(Reason::NotReceiver, "only the receiver can answer a friend request")
                    } else {
                        ApiError::NotFound("friend request not found".into())
                    });
                }
                let to = match answer {
                    Answer::Accept => RequestStatus::Accepted,
                    Answer::Reject => RequestStatus::Rejected,
                };
                if !db::friend_requests::settle(conn, request_id, to)? {
                    return Err(ApiError::Conflict(format!("this friend request is already {}", request.status.as_str())));
                }
                if answer == Answer::Accept {
                    if db::contacts::blocked_between(conn, request.sender_id, request.receiver_id)? {
                        return Err(ApiError::forbidden(Reason::Blocked, "you cannot befriend this user"));
                    }
                    db::contacts::befriend(conn, request.sender_id, request.receiver_id)?;
                }
                let settled =
                    db::friend_requests::find(conn, request_id)?.ok_or_else(|| ApiError::NotFound("friend request not found".into()))?;
                view(conn, settled)
            })
        })
        .await?;
    if view.status == RequestStatus::Accepted {
        announce_friendship(state, view.sender.id, view.receiver.id, true);
    } else {
        closed(state, view.sender.id, view.receiver.id).await;
    }
    Ok(with_presence(state, caller, view))
}

/// The key of the requests from `sender` to `receiver` in [`ratelimit::FRIEND_REQUEST_AFTER_CLOSE`].
fn request_pair(sender: UserId, receiver: UserId) -> String {
    format!("{sender}>{receiver}")
}

/// A request from `sender` to `receiver` was rejected or cancelled: the next one waits.
async fn closed(state: &State, sender: UserId, receiver: UserId) {
    let _ = state.limits.check(ratelimit::FRIEND_REQUEST_AFTER_CLOSE, &request_pair(sender, receiver)).await;
}

/// The sender withdraws a pending request.
pub async fn cancel_request(state: &State, caller: UserId, request_id: i64) -> ApiResult<()> {
    let receiver = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let request =
                    db::friend_requests::find(conn, request_id)?.ok_or_else(|| ApiError::NotFound("friend request not found".into()))?;
                if request.sender_id != caller {
                    return Err(if request.receiver_id == caller {
                        ApiError::forbidden(Reason::NotSender, "only the sender can cancel a friend request; the receiver rejects it")
                    } else {
                        ApiError::NotFound("friend request not found".into())
                    });
                }
                if !db::friend_requests::settle(conn, request_id, RequestStatus::Cancelled)? {
                    return Err(ApiError::Conflict(format!("this friend request is already {}", request.status.as_str())));
                }
                Ok(request.receiver_id)
            })
        })
        .await?;
    closed(state, caller, receiver).await;
    Ok(())
}

/// The caller's friends, by username.
pub async fn friends(state: &State, caller: UserId) -> ApiResult<Vec<UserPublic>> {
    let rows: Vec<PublicUserRow> = state.db.run(move |conn| db::contacts::friends_by_username(conn, caller)).await?;
    Ok(public_with_presence(state, rows))
}

fn public_with_presence(state: &State, rows: Vec<PublicUserRow>) -> Vec<UserPublic> {
    let mut list: Vec<UserPublic> = rows.into_iter().map(|row| UserPublic::new(row, false)).collect();
    fill_online(state, list.iter_mut());
    list
}

/// Ends a friendship, for both sides.
pub async fn remove_friend(state: &State, caller: UserId, friend_id: UserId) -> ApiResult<()> {
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let removed = db::contacts::unfriend(conn, caller, friend_id)?;
                if removed == 0 {
                    return Err(ApiError::NotFound("this user is not your friend".into()));
                }
                Ok(())
            })
        })
        .await?;
    announce_friendship(state, caller, friend_id, false);
    Ok(())
}

/// Blocks `target`: ends the friendship and cancels pending requests both ways.
pub async fn block(state: &State, caller: UserId, target: UserId) -> ApiResult<UserPublic> {
    if caller == target {
        return Err(ApiError::invalid_field("block_user_id", "you cannot block yourself"));
    }
    let row = state
        .db
        .run(move |conn| {
            write_tx_retrying_conflicts(conn, 2, |conn| {
                let row = db::users::public_row(conn, target)?.ok_or_else(|| ApiError::NotFound("user not found".into()))?;
                if db::contacts::is_blocking(conn, caller, target)? {
                    return Err(ApiError::Conflict("you have already blocked this user".into()));
                }
                db::contacts::insert_block(conn, caller, target)?;
                db::contacts::unfriend(conn, caller, target)?;
                db::friend_requests::cancel_pending_between(conn, caller, target)?;
                Ok(row)
            })
        })
        .await?;
    announce_friendship(state, caller, target, false);
    crate::services::audit::record(
        state,
        crate::services::audit::Event { action: "block", actor: Some(caller), subject: Some(target), address: None, detail: String::new() },
    )
    .await;
    Ok(UserPublic::new(row, false))
}

/// Users the caller blocked, by username.
pub async fn blocked_users(state: &State, caller: UserId) -> ApiResult<Vec<UserPublic>> {
    let rows = state.db.run(move |conn| db::contacts::blocked_by(conn, caller)).await?;
    // Never presence across a block.
    Ok(rows.into_iter().map(|row| UserPublic::new(row, false)).collect())
}

pub async fn unblock(state: &State, caller: UserId, target: UserId) -> ApiResult<()> {
    let removed = state.db.run(move |conn| db::contacts::delete_block(conn, caller, target)).await?;
    if removed == 0 {
        return Err(ApiError::NotFound("you have not blocked this user".into()));
    }
    Ok(())
}

/// The smallest string above every string that starts with `prefix`, in byte (and so code
/// point) order: `prefix` with its last character incremented. `None` for an empty prefix.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32)?;
    chars.push(next);
    Some(chars.into_iter().collect())
}

/// People matching `search`: the exact email first, then username, first-name and last-name
/// prefix matches, each in name order, without repeats. Every list is an index range bounded
/// by `offset + limit`, so the cost does not grow with the number of users.
pub async fn find_people(state: &State, caller: UserId, search: Search) -> ApiResult<Vec<FoundUser>> {
    let mut found: Vec<FoundUser> = state
        .db
        .run(move |conn| {
            let prefix = search_key(search.text.trim());
            let Some(upper) = prefix_upper_bound(&prefix) else {
                return Ok(Vec::new());
            };
            let wanted = search.offset + search.limit;
            let mut ordered: Vec<UserId> = Vec::new();
            let mut seen = HashSet::new();
            if let Ok(email) = EmailAddress::parse(&search.text) {
                let exact = db::users::active_id_by_email_except(conn, email.as_str(), caller)?;
                if let Some(id) = exact.filter(|id| !db::contacts::blocked_between(conn, caller, *id).unwrap_or(true)) {
                    seen.insert(id);
                    ordered.push(id);
                }
            }
            for key in [NameKey::Username, NameKey::FirstName, NameKey::LastName] {
                for id in db::users::ids_by_prefix(conn, caller, key, &prefix, &upper, wanted)? {
                    if seen.insert(id) {
                        ordered.push(id);
                    }
                }
            }
            let page: Vec<UserId> = ordered.into_iter().skip(search.offset as usize).take(search.limit as usize).collect();
            let mut rows = db::users::public_rows(conn, &page)?;
            let relations = relations(conn, caller, &page)?;
            Ok(page
                .iter()
                .filter_map(|id| rows.remove(id))
                .map(|row| FoundUser {
                    relation: relations.get(&row.id).copied().unwrap_or(Relation::None),
                    id: row.id,
                    username: row.username,
                    first_name: row.first_name,
                    last_name: row.last_name,
                    online: false,
                })
                .collect())
        })
        .await?;
    // Presence only for friends among the results.
    let online = state.live.online(&mut found.iter().filter(|f| f.relation == Relation::Friend).map(|f| f.id));
    for user in &mut found {
        user.online = user.relation == Relation::Friend && online.contains(&user.id);
    }
    Ok(found)
}

/// How each of `ids` relates to `caller` (absent: no relation).
fn relations(conn: &mut DbConn, caller: UserId, ids: &[UserId]) -> ApiResult<HashMap<UserId, Relation>> {
    let mut relations = HashMap::new();
    let sent = db::friend_requests::pending_sent_to_any(conn, caller, ids)?;
    let received = db::friend_requests::pending_received_from_any(conn, caller, ids)?;
    let friends = db::contacts::friends_among(conn, caller, ids)?;
    relations.extend(sent.into_iter().map(|id| (id, Relation::RequestSent)));
    relations.extend(received.into_iter().map(|id| (id, Relation::RequestReceived)));
    relations.extend(friends.into_iter().map(|id| (id, Relation::Friend)));
    Ok(relations)
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn the_upper_bound_is_the_next_string_after_every_extension_of_the_prefix() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("").as_deref(), None);
        assert_eq!(prefix_upper_bound("z\u{d7ff}").as_deref(), Some("z\u{e000}"), "surrogates are skipped");
        let upper = prefix_upper_bound("jö").unwrap();
        for name in ["jö", "jörg", "jö\u{10ffff}x"] {
            assert!(name >= "jö" && name < upper.as_str(), "{name} is inside the range");
        }
        for name in ["jo", "jo\u{10ffff}", "jp", "j÷", "jøa", "k"] {
            assert!(!(name >= "jö" && name < upper.as_str()), "{name} is outside the range");
        }
    }
}
