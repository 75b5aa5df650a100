//! The faults tests cause: a Redis of the test's own to stop and restart, a TCP link to cut (a
//! network partition between one node and a service), PostgreSQL dropping every connection.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{free_port, postgres_admin_url};

/// A TCP proxy a test can cut: every connection through it is closed at once and new ones are
/// refused.
pub struct Cuttable {
    pub port: u16,
    cut: Arc<watch::Sender<bool>>,
}

impl Cuttable {
    /// Starts forwarding a free port on 127.0.0.1 to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(watch::Sender::new(false));
        let (upstream, cut_signal) = (upstream.to_owned(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cut_signal.subscribe();
                if *cut.borrow_and_update() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Cuttable { port, cut }
    }

    /// Closes every connection and refuses new ones until [`Cuttable::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

/// A Redis server of the test's own, so the test can stop and restart it.
pub struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = free_port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PostgreSQL terminates every connection to the database at `url` (what a failover or an
/// administrator does); how many it dropped.
pub async fn drop_every_connection(url: &str) -> usize {
    use diesel::{Connection, RunQueryDsl, pg::PgConnection};
    let name = url.rsplit('/').next().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut admin = PgConnection::establish(&postgres_admin_url()).unwrap();
        #[derive(diesel::QueryableByName)]
        struct Terminated {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            #[allow(dead_code)]
            terminated: bool,
        }
        let rows: Vec<Terminated> = diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .load(&mut admin)
        .unwrap();
        rows.len()
    })
    .await
    .unwrap()
}
