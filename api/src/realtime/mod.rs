//! Real-time delivery: the WebSocket session actors, the room registry actor, the batching
//! message writer, and the frames they speak.

pub mod protocol;
pub mod registry;
pub mod session;
pub mod writer;

use std::sync::Arc;

use crate::db::Db;
use crate::dto::UserPublic;
use crate::metrics::Metrics;
use registry::RegistryHandle;
use writer::WriterHandle;

/// The handles of this node's real-time actors.
#[derive(Clone)]
pub struct Realtime {
    pub registry: RegistryHandle,
    pub writer: WriterHandle,
}

impl Realtime {
    /// Starts the registry and the writer (needs a running Tokio runtime).
    pub fn start(db: Db, writer_max_batch: usize, metrics: Arc<Metrics>) -> Realtime {
        let registry = RegistryHandle::spawn(metrics.clone());
        let writer = WriterHandle::spawn(db, registry.clone(), metrics, writer_max_batch);
        Realtime { registry, writer }
    }
}

/// Sets `online` on each user from this node's registry.
pub async fn fill_online<'a>(registry: &RegistryHandle, users: impl IntoIterator<Item = &'a mut UserPublic>) {
    let mut users: Vec<&mut UserPublic> = users.into_iter().collect();
    if users.is_empty() {
        return;
    }
    let online = registry.online(users.iter().map(|u| u.id).collect()).await;
    for user in users.iter_mut() {
        user.online = online.contains(&user.id);
    }
}
