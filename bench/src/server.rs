//! Starting the real `chat-api` binary for a run: a fresh database, a free port, and the
//! process stopped when the run ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// The signing key of servers under test, so the bench can mint their tokens.
pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-00";

/// Which storage a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Sqlite,
    Postgres,
}

impl std::str::FromStr for Storage {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Storage> {
        match s {
            "sqlite" => Ok(Storage::Sqlite),
            "postgres" => Ok(Storage::Postgres),
            other => bail!("unknown database {other:?}: use sqlite or postgres"),
        }
    }
}

/// A fresh database for one run: a SQLite file in a temporary folder, or a new PostgreSQL
/// database dropped at the end.
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

fn postgres_admin_url() -> String {
    std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Database {
    pub fn create(storage: Storage) -> anyhow::Result<Database> {
        use diesel::{Connection, RunQueryDsl, pg::PgConnection};
        let dir = tempfile::tempdir()?;
        match storage {
            Storage::Sqlite => Ok(Database { url: format!("sqlite://{}", dir.path().join("chat.db").display()), dir, pg_name: None }),
            Storage::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = PgConnection::establish(&admin).with_context(|| format!("connecting to {admin}"))?;
                let name = format!("chat_bench_{}_{}", std::process::id(), rand::random::<u32>());
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
                let (base, _) = admin.rsplit_once('/').context("PostgreSQL URL without database")?;
                Ok(Database { url: format!("{base}/{name}"), dir, pg_name: Some(name) })
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl, pg::PgConnection};
        if let Some(name) = &self.pg_name
            && let Ok(mut conn) = PgConnection::establish(&postgres_admin_url())
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
        }
    }
}

/// The `chat-api` next to this binary (same cargo profile), unless `--server` names one.
pub fn default_server_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("chat-api")
}

/// A running server.
pub struct Server {
    pub base_url: String,
    child: Child,
}

impl Server {
    /// Starts `binary` on `database` with benchmark settings (rate limits off, cheap bcrypt,
    /// quiet logs) and waits for it to listen.
    pub fn start(binary: &Path, database: &Database, extra_env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let mut command = Command::new(binary);
        command
            .env("CHAT_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &database.url)
            .env("DATA_DIR", database.dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .env("BCRYPT_COST", "4")
            .env("RATE_LIMIT_SCALE", "0")
            .env("RUST_LOG", "warn")
            .env_remove("SMTP_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let mut reader = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let Some(address) = line.trim().strip_prefix("chat-api listening on ") else {
            let _ = child.kill();
            bail!("chat-api did not start: {line:?}");
        };
        Ok(Server { base_url: address.to_owned(), child })
    }

    /// Starts `nodes` servers on `database`. Several are linked through `redis` on a channel of
    /// their own, and given half a second to subscribe and meet each other.
    pub async fn start_nodes(
        binary: &Path,
        database: &Database,
        extra_env: &[(&str, &str)],
        nodes: usize,
        redis: &str,
    ) -> anyhow::Result<Vec<Server>> {
        let channel = format!("chat-bench:{}:{}", std::process::id(), rand::random::<u32>());
        let mut env = extra_env.to_vec();
        if nodes > 1 {
            env.extend([("REDIS_URL", redis), ("REDIS_CHANNEL", channel.as_str())]);
        }
        let servers = (0..nodes.max(1)).map(|_| Server::start(binary, database, &env)).collect::<anyhow::Result<Vec<_>>>()?;
        if nodes > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Ok(servers)
    }

    /// The `ws://` base of the server.
    pub fn ws_base(&self) -> String {
        self.base_url.replacen("http://", "ws://", 1)
    }

    /// The server's process id, for CPU and memory readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `chat-bench relay` (this binary) and waits for it to listen.
    pub fn start_relay() -> anyhow::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["relay", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut reader = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let Some(address) = line.trim().strip_prefix("relay listening on ") else {
            let _ = child.kill();
            bail!("relay did not start: {line:?}");
        };
        Ok(Server { base_url: address.to_owned(), child })
    }

    /// Runs `chat-api ARGS` against `database` and waits for it.
    pub fn run_command(binary: &Path, database: &Database, args: &[&str]) -> anyhow::Result<()> {
        let status = Command::new(binary)
            .args(args)
            .env("DATABASE_URL", &database.url)
            .env("DATA_DIR", database.dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn")
            .status()?;
        if !status.success() {
            bail!("chat-api {args:?} failed");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
