//! A connection's inbox: what the registry and the message writer hand its session to write.
//! Frames come in parcels (everything one fan-out has for the connection: one channel
//! operation, where a frame each cost one) and are counted, so a connection that stops reading
//! is found out: once `capacity` frames wait, sending more fails and the registry kicks it. A
//! parcel is never refused for its own size (one writer batch into a busy room may be larger
//! than `capacity`), only for the frames left unread before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::delivery::Outbound;

/// A new inbox holding at most `capacity` frames, and the address it is sent to.
pub fn inbox(capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    (Outbox { tx, waiting: waiting.clone(), capacity }, Inbox { rx, waiting })
}

/// Why a parcel was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection has `capacity` frames waiting: it reads too slowly.
    Full,
    /// The connection is gone.
    Closed,
}

/// Where a connection's frames go; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Vec<Outbound>>,
    waiting: Arc<AtomicUsize>,
    capacity: usize,
}

impl Outbox {
    pub fn send(&self, frame: Outbound) -> Result<(), Refused> {
        self.send_all(vec![frame])
    }

    /// Sends `frames` as one parcel, or none of them if `capacity` frames are still waiting.
    pub fn send_all(&self, frames: Vec<Outbound>) -> Result<(), Refused> {
        let count = frames.len();
        if self.waiting.fetch_add(count, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(count, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.send(frames).map_err(|_| {
            self.waiting.fetch_sub(count, Ordering::AcqRel);
            Refused::Closed
        })
    }
}

/// The session's end.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Vec<Outbound>>,
    waiting: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next parcel; `None` once every outbox is gone.
    pub async fn recv(&mut self) -> Option<Vec<Outbound>> {
        let frames = self.rx.recv().await?;
        self.waiting.fetch_sub(frames.len(), Ordering::AcqRel);
        Some(frames)
    }

    /// A parcel already waiting, if any.
    pub fn try_recv(&mut self) -> Option<Vec<Outbound>> {
        let frames = self.rx.try_recv().ok()?;
        self.waiting.fetch_sub(frames.len(), Ordering::AcqRel);
        Some(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &'static str) -> Outbound {
        Outbound::Frame(text.into())
    }

    #[tokio::test]
    async fn an_inbox_refuses_parcels_once_capacity_frames_wait_and_frees_room_as_they_are_read() {
        let (outbox, mut inbox) = inbox(3);
        outbox.send_all(vec![frame("a"), frame("b")]).unwrap();
        outbox.send(frame("c")).unwrap();
        assert_eq!(outbox.send(frame("d")), Err(Refused::Full), "3 frames wait");
        assert_eq!(outbox.send_all(vec![frame("d"), frame("e")]), Err(Refused::Full));
        assert_eq!(inbox.recv().await.unwrap().len(), 2);
        outbox.send_all(vec![frame("d"), frame("e")]).unwrap();
        assert_eq!(outbox.send(frame("f")), Err(Refused::Full), "the parcel took the waiting frames to 4");
        let texts: Vec<String> = [inbox.recv().await.unwrap(), inbox.recv().await.unwrap()]
            .concat()
            .into_iter()
            .map(|o| match o {
                Outbound::Frame(text) => text.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["c", "d", "e"], "parcels arrive whole and in order");
        let larger_than_capacity: Vec<Outbound> = ["f", "g", "h", "i", "j"].into_iter().map(frame).collect();
        outbox.send_all(larger_than_capacity).unwrap();
        assert_eq!(inbox.recv().await.unwrap().len(), 5, "an empty inbox takes a parcel of any size");
        drop(inbox);
        assert_eq!(outbox.send(frame("f")), Err(Refused::Closed));
    }
}
