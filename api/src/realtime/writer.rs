//! The message writer actor: takes every queued send, stores the batch in one transaction
//! (group commit), then answers each sender and hands the stored messages to the registry.
//! A send is acknowledged only after its commit, so an `ack` means "stored".
//!
//! The writer is a thread of its own, not a task: it spends its life in the database, and a
//! task would hand every batch to the blocking pool and wait to be woken again, two thread
//! wake-ups per batch, each a chance to queue behind other work on a busy machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::delivery::{Delivery, Outbound, SessionId};
use super::inbox::Outbox;
use super::protocol::{MessageFrames, ServerFrame, encode, error_frame};
use super::registry::RegistryHandle;
use crate::db::Db;
use crate::domain::SendRequest;
use crate::dto::MessageView;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::services::messages::{Outcome, store_batch};

/// Sends waiting for the writer, at most; past it, senders are told to retry.
const QUEUE_CAPACITY: usize = 16_384;

/// Where the answer to a send goes.
pub enum Reply {
    /// A REST request waiting for its message.
    Http(oneshot::Sender<ApiResult<MessageView>>),
    /// A WebSocket connection: `ack` through the registry (in order with other messages), or
    /// `error` straight to its inbox. The permit counts against the connection's sends in
    /// flight until the send is answered.
    Socket { session: SessionId, outbox: Outbox, _permit: OwnedSemaphorePermit },
}

struct Job {
    request: SendRequest,
    reply: Reply,
}

/// What the writer's queue carries: sends, and flush markers answered once everything queued
/// before them is stored.
enum Item {
    Send(Job),
    Flush(oneshot::Sender<()>),
}

/// The cheap, cloneable address of the writer.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Item>,
    /// Set on shutdown: new sends are refused (their clients resend after reconnecting), so
    /// everything stored can still be answered before the connections close.
    closing: Arc<AtomicBool>,
}

impl WriterHandle {
    /// Starts the writer; it stores at most `max_batch` sends per transaction.
    pub fn spawn(db: Db, registry: RegistryHandle, stats: Arc<Metrics>, max_batch: usize) -> anyhow::Result<WriterHandle> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new().name("message-writer".into()).spawn(move || run(db, registry, rx, stats, max_batch))?;
        Ok(WriterHandle { tx, closing: Arc::new(AtomicBool::new(false)) })
    }

    /// Stores a message for a REST request and returns it once committed.
    pub async fn send(&self, request: SendRequest) -> ApiResult<MessageView> {
        self.refuse_when_closing()?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Item::Send(Job { request, reply: Reply::Http(reply) }))
            .await
            .map_err(|_| ApiError::Unavailable(anyhow::anyhow!("message writer stopped")))?;
        answer.await.map_err(|_| ApiError::Unavailable(anyhow::anyhow!("message writer dropped the request")))?
    }

    /// Shutdown: refuses sends from now on, and waits until every send queued so far is stored
    /// and answered.
    pub async fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.flush().await;
    }

    /// Waits until every send queued so far is stored and answered.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Queues a message from a WebSocket connection without waiting.
    pub fn submit(&self, request: SendRequest, session: SessionId, outbox: Outbox, permit: OwnedSemaphorePermit) -> ApiResult<()> {
        self.refuse_when_closing()?;
        self.tx
            .try_send(Item::Send(Job { request, reply: Reply::Socket { session, outbox, _permit: permit } }))
            .map_err(|_| ApiError::Unavailable(anyhow::anyhow!("the server is busy storing messages; retry with the same client_id")))
    }
}

impl WriterHandle {
    fn refuse_when_closing(&self) -> ApiResult<()> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(ApiError::Unavailable(anyhow::anyhow!("the server is restarting: reconnect and resend with the same client_id")));
        }
        Ok(())
    }
}

fn run(db: Db, registry: RegistryHandle, mut rx: mpsc::Receiver<Item>, stats: Arc<Metrics>, max_batch: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = Vec::new();
        let mut flushes = Vec::new();
        match first {
            Item::Send(job) => jobs.push(job),
            Item::Flush(done) => flushes.push(done),
        }
        while jobs.len() < max_batch && flushes.is_empty() {
            match rx.try_recv() {
                Ok(Item::Send(job)) => jobs.push(job),
                Ok(Item::Flush(done)) => flushes.push(done),
                Err(_) => break,
            }
        }
        store(&db, &registry, &stats, jobs);
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Stores one batch and answers its senders.
fn store(db: &Db, registry: &RegistryHandle, stats: &Arc<Metrics>, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // The requests side by side, as store_batch reads them; each goes back to its reply after.
    let (requests, replies): (Vec<SendRequest>, Vec<Reply>) = jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
    let stored = db.run_here(|conn| store_batch(conn, &requests));
    let jobs: Vec<Job> = requests.into_iter().zip(replies).map(|(request, reply)| Job { request, reply }).collect();
    match stored {
        Ok(batch) => dispatch(registry, stats, jobs, batch),
        // The database is unreachable or full: every send of the batch would fail alike.
        Err(ApiError::Unavailable(cause)) => {
            tracing::error!(error = format!("{cause:?}"), size = jobs.len(), "storing a batch failed: database unavailable");
            for job in jobs {
                answer_error(job, ApiError::Unavailable(anyhow::anyhow!("the message could not be stored; retry with the same client_id")));
            }
        }
        Err(error) if jobs.len() > 1 => {
            // One bad send must not fail its neighbours: store each alone.
            tracing::warn!(error = format!("{error:?}"), size = jobs.len(), "message batch failed; storing its sends one by one");
            for job in jobs {
                match db.run_here(|conn| store_batch(conn, std::slice::from_ref(&job.request))) {
                    Ok(batch) => dispatch(registry, stats, vec![job], batch),
                    Err(error) => fail(job, error),
                }
            }
        }
        Err(error) => {
            if let Some(job) = jobs.into_iter().next() {
                fail(job, error);
            }
        }
    }
}

/// Answers a job whose storing failed: a database that is unavailable is worth a retry with
/// the same client id; anything else is final.
fn fail(job: Job, error: ApiError) {
    tracing::error!(error = format!("{error:?}"), room_id = %job.request.room_id, "storing a message failed");
    let answer = match error {
        ApiError::Unavailable(_) => {
            ApiError::Unavailable(anyhow::anyhow!("the message could not be stored; retry with the same client_id"))
        }
        other => other,
    };
    answer_error(job, answer);
}

/// Answers every job of a stored batch and hands the new messages to the registry.
fn dispatch(registry: &RegistryHandle, stats: &Metrics, jobs: Vec<Job>, batch: crate::services::messages::StoredBatch) {
    use std::sync::atomic::Ordering::Relaxed;
    let stored_count = batch.outcomes.iter().filter(|o| matches!(o, Outcome::Stored(_))).count();
    stats.messages_stored.fetch_add(stored_count as u64, Relaxed);
    stats.writer_batch_size.observe(stored_count as f64);
    let online = registry.online(batch.senders.keys().copied());
    let mut deliveries = Vec::new();
    for (job, outcome) in jobs.into_iter().zip(batch.outcomes) {
        let view = |message| MessageView::assemble(message, &batch.senders, &online);
        match outcome {
            Outcome::Stored(message) => {
                let members = batch.members.get(&message.room_id).cloned().unwrap_or_else(|| Arc::from(Vec::new()));
                let Some(view) = view(message) else { continue };
                match job.reply {
                    Reply::Socket { session, .. } => {
                        deliveries.push(Delivery { members, frames: Arc::new(MessageFrames::new(view)), origin: Some(session) });
                    }
                    Reply::Http(reply) => {
                        deliveries.push(Delivery { members, frames: Arc::new(MessageFrames::new(view.clone())), origin: None });
                        let _ = reply.send(Ok(view));
                    }
                }
            }
            Outcome::Duplicate(message) => match (job.reply, view(message)) {
                (Reply::Http(reply), Some(view)) => {
                    let _ = reply.send(Ok(view));
                }
                (Reply::Socket { outbox, .. }, Some(view)) => {
                    let _ = outbox.send(Outbound::Frame(encode(&ServerFrame::Ack { client_id: &view.client_id, message: &view })));
                }
                (_, None) => {}
            },
            Outcome::Rejected(error) => answer_error(job, error),
        }
    }
    registry.deliver(deliveries);
}

fn answer_error(job: Job, error: ApiError) {
    match job.reply {
        Reply::Http(reply) => {
            let _ = reply.send(Err(error));
        }
        Reply::Socket { outbox, .. } => {
            let _ = outbox.send(Outbound::Frame(error_frame(&error, Some(job.request.client_id.into_string()))));
        }
    }
}
