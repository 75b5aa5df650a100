//! Real-time delivery: the WebSocket session actors, the room registry actor, the batching
//! message writer, the frames they speak, and (with Redis) the link between nodes.

pub mod cluster;
pub mod inbox;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod sequencer;
pub mod session;
pub mod writer;

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::dto::UserPublic;
use crate::metrics::Metrics;
use cluster::Cluster;
use registry::RegistryHandle;
use sequencer::Sequencer;
use writer::WriterHandle;

/// The handles of this node's real-time actors.
#[derive(Clone)]
pub struct Realtime {
    pub registry: RegistryHandle,
    pub writer: WriterHandle,
    /// Set with Redis.
    pub cluster: Option<cluster::ClusterHandle>,
}

impl Realtime {
    /// Starts the registry and the writer, and with `redis_url` the cluster link and the
    /// sequencer (needs a running Tokio runtime). The writer stores through `writer_db`; the
    /// sequencer reads through `db`.
    pub fn start(config: &Config, db: Db, writer_db: Db, metrics: Arc<Metrics>) -> anyhow::Result<Realtime> {
        let Some(redis_url) = &config.redis_url else {
            let registry = RegistryHandle::spawn(metrics.clone(), None);
            let writer = WriterHandle::spawn(writer_db, registry.clone(), metrics, config.writer_max_batch)?;
            return Ok(Realtime { registry, writer, cluster: None });
        };
        let link = Cluster::new(redis_url, &config.redis_channel)?;
        let (sequencer, sequencer_inbox) = Sequencer::channel();
        let registry = RegistryHandle::spawn(metrics.clone(), Some((link.publisher.clone(), sequencer.clone())));
        sequencer.start(sequencer_inbox, db.clone(), registry.clone());
        let cluster = link.start(registry.clone(), sequencer, db);
        let writer = WriterHandle::spawn(writer_db, registry.clone(), metrics, config.writer_max_batch)?;
        Ok(Realtime { registry, writer, cluster: Some(cluster) })
    }

    /// Shutdown, after the connections are closed: stores what is queued, then tells the other
    /// nodes (everything published before this node leaves).
    pub async fn finish(&self) {
        self.writer.flush().await;
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
    }
}

/// Sets `online` on each user from the registry (which counts every node's connections).
pub fn fill_online<'a>(registry: &RegistryHandle, users: impl IntoIterator<Item = &'a mut UserPublic>) {
    let mut users: Vec<&mut UserPublic> = users.into_iter().collect();
    if users.is_empty() {
        return;
    }
    let online = registry.online(users.iter().map(|u| u.id));
    for user in users.iter_mut() {
        user.online = online.contains(&user.id);
    }
}
