//! Real-time delivery: the WebSocket session actors, the room registry actor, the batching
//! message writer, the frames they speak, and (with Redis) the link between nodes.

pub mod cluster;
pub mod delivery;
pub mod frame_limit;
pub mod inbox;
pub mod link;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod sequencer;
pub mod session;
pub mod writer;

use std::collections::HashSet;
use std::sync::Arc;

use crate::auth::SessionTrust;
use crate::config::Config;
use crate::db::Db;
use crate::domain::SendRequest;
use crate::dto::MessageView;
use crate::error::ApiResult;
use crate::ids::UserId;
use crate::metrics::Metrics;
use crate::ports::{DomainEvent, PortFuture, RealtimePort};
use cluster::Cluster;
use protocol::{ServerFrame, encode};
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
    pub fn start(config: &Config, db: Db, writer_db: Db, metrics: Arc<Metrics>, trust: Arc<SessionTrust>) -> anyhow::Result<Realtime> {
        let Some(redis_url) = &config.redis_url else {
            let registry = RegistryHandle::spawn(metrics.clone(), None, trust, config.ws_max_per_user);
            let writer = WriterHandle::spawn(writer_db, registry.clone(), metrics, config.writer_max_batch)?;
            return Ok(Realtime { registry, writer, cluster: None });
        };
        let link = Cluster::new(redis_url, &config.redis_channel)?;
        let (sequencer, sequencer_inbox) = Sequencer::channel();
        let registry = RegistryHandle::spawn(
            metrics.clone(),
            Some((link.publisher.clone(), sequencer.clone())),
            trust.clone(),
            config.ws_max_per_user,
        );
        let fan_out = registry.clone();
        sequencer
            .start(sequencer_inbox, db.clone(), registry.online_users(), link.stats.clone(), move |ready| fan_out.deliver_in_order(ready));
        let cluster = link.start(registry.clone(), sequencer, db);
        let writer = WriterHandle::spawn(writer_db, registry.clone(), metrics, config.writer_max_batch)?;
        Ok(Realtime { registry, writer, cluster: Some(cluster) })
    }

    /// Shutdown: new sends are refused, what is queued is stored and answered, then every
    /// connection closes (1012) once its answers are written, and the other nodes are told
    /// (everything published before this node leaves).
    pub async fn shut_down(&self) {
        self.writer.close().await;
        self.registry.close_all();
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
    }
}

impl RealtimePort for Realtime {
    fn announce(&self, event: DomainEvent) {
        match event {
            DomainEvent::FriendshipChanged { a, b, friends } => self.registry.friendship(a, b, friends),
            DomainEvent::RoomChanged { views } => {
                let frames = views.iter().map(|(user, view)| (*user, encode(&ServerFrame::Room { room: view }))).collect();
                self.registry.to_each(frames);
            }
            DomainEvent::MemberLeft { room_id, user_id } => {
                self.registry.to_users(vec![user_id], encode(&ServerFrame::RoomLeft { room_id }), None);
            }
            DomainEvent::ReadMoved { room_id, user_id, seq, audience } => {
                self.registry.to_users(audience, encode(&ServerFrame::Read { room_id, user_id, seq }), None);
            }
            DomainEvent::SessionsRevoked { user_id, only, keep } => self.registry.kick_logins(user_id, only, keep),
        }
    }

    fn online(&self, users: &mut dyn Iterator<Item = UserId>) -> HashSet<UserId> {
        self.registry.online(users)
    }

    fn store_message(&self, request: SendRequest) -> PortFuture<ApiResult<MessageView>> {
        let writer = self.writer.clone();
        Box::pin(async move { writer.send(request).await })
    }
}
