//! Storage: one connection type over SQLite and PostgreSQL, the r2d2 pool, embedded migrations,
//! and the helpers that run diesel off the async executor and open write transactions.

pub mod ai_accounts;
pub mod ai_conversations;
pub mod audit;
mod cached;
pub mod contacts;
pub mod friend_requests;
pub mod members;
pub mod messages;
pub mod models;
pub mod one_time_tokens;
pub mod room_events;
pub mod rooms;
pub mod schema;
pub mod sessions;
mod sqlite_time;
pub mod users;

pub use cached::Cached;
pub use sqlite_time::SqliteTimestamp;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{ApiError, ApiResult};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A connection to whichever backend `DATABASE_URL` names. Queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection behind a [`DbConn`], for hot reads
/// and multi-row inserts. Through the multi-connection, diesel renders each query's SQL anew to
/// find its prepared statement and converts every value through a wrapper; on the concrete
/// connection the statement is found by the query's type and values are read directly.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    };
}

/// Sets up SQLite for this process once, before its first connection opens:
///
/// - Multi-thread mode instead of serialized: SQLite then takes no mutex on every call into a
///   connection (each `sqlite3_step`, each column read). A pooled connection is only ever used
///   by one thread at a time, which is all that mode asks. With memory statistics off, every
///   allocation SQLite makes skips a global mutex too (figures: BENCHMARKS.md).
/// - The query planner stability guarantee (QPSG) in every connection. The bundled SQLite is
///   built with STAT4, under which a prepared statement comparing a bound parameter with an
///   indexed column is compiled again whenever that parameter's value changes: diesel kept its
///   prepared statements, but SQLite re-parsed and re-planned them on nearly every use. Plans
///   could not differ anyway: nothing here runs ANALYZE, so there are no statistics to plan by.
fn configure_sqlite() {
    use libsqlite3_sys as ffi;
    use std::os::raw::{c_char, c_int};

    unsafe extern "C" fn on_open(db: *mut ffi::sqlite3, _: *mut *mut c_char, _: *const ffi::sqlite3_api_routines) -> c_int {
        // SAFETY: SQLite passes a valid handle; ENABLE_QPSG takes an int and an int pointer,
        // which may be null.
        unsafe { ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_QPSG, 1 as c_int, std::ptr::null_mut::<c_int>()) };
        ffi::SQLITE_OK
    }

    static CONFIGURE: std::sync::Once = std::sync::Once::new();
    CONFIGURE.call_once(|| {
        // SAFETY: sqlite3_config is called with the argument types its options document, before
        // anything in this process has initialised SQLite (if something had, SQLite refuses
        // with SQLITE_MISUSE and stays in serialized mode, which is only slower). The auto
        // extension has the signature SQLite calls auto extensions with.
        unsafe {
            let threading = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MULTITHREAD);
            let statistics = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            if threading != ffi::SQLITE_OK || statistics != ffi::SQLITE_OK {
                tracing::warn!(threading, statistics, "SQLite was initialised before it could be configured; it stays serialized");
            }
            ffi::sqlite3_auto_extension(Some(on_open));
        }
    });
}

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> anyhow::Result<DatabaseUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("DATABASE_URL {url:?} names no file: use sqlite://data/chat.db");
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            bail!("DATABASE_URL must start with sqlite:// or postgres://")
        }
    }
}

/// Opens connections for the pool, choosing the backend from the URL scheme (diesel's derived
/// `establish` would try each backend in turn and hide the real PostgreSQL error).
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        use diesel::r2d2::Error::{ConnectionError, QueryError};
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                configure_sqlite();
                let mut conn = SqliteConnection::establish(&path.to_string_lossy()).map_err(ConnectionError)?;
                // WAL lets readers run beside the writer; FULL makes every commit durable before
                // it is acknowledged (the message writer batches, so the fsync is shared).
                // temp_store MEMORY keeps statement journals in memory: a statement that may
                // change several rows journals the pages it changes, and past 64 KiB SQLite
                // would spill that journal to a temporary file.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
                )
                .map_err(QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => Ok(DbConn::Pg(PgConnection::establish(url).map_err(ConnectionError)?)),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        // Called on the thread that used the connection, as it goes back to the pool.
        CONNECTION_SUSPECT.replace(false) || <DbConn as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

thread_local! {
    /// Set when the connection this thread just used failed as if its server were gone; the
    /// pool then drops it instead of handing it out again.
    static CONNECTION_SUSPECT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The connection pool, cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    health: Arc<PoolHealth>,
}

/// How long after a connection turned out dead every checkout is tested first.
const TEST_CHECKOUTS_FOR: Duration = Duration::from_secs(10);

/// When a connection last turned out dead. A server that drops one connection (a restart, an
/// administrator's terminate) has dropped the idle ones too: for a while after, every checkout
/// is tested first, so each of them costs a `SELECT 1` instead of a client's request.
#[derive(Debug)]
struct PoolHealth {
    since: Instant,
    /// Milliseconds from `since` to the last loss, plus one; 0 when none.
    last_loss: AtomicU64,
}

impl PoolHealth {
    fn new() -> PoolHealth {
        PoolHealth { since: Instant::now(), last_loss: AtomicU64::new(0) }
    }

    fn lost_a_connection(&self) {
        self.last_loss.store(self.since.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    fn testing_checkouts(&self) -> bool {
        let last_loss = self.last_loss.load(Ordering::Relaxed);
        last_loss != 0 && self.since.elapsed().as_millis() as u64 + 1 - last_loss < TEST_CHECKOUTS_FOR.as_millis() as u64
    }
}

impl Db {
    /// Opens the pool (creating the SQLite file and its folder if needed) and applies pending
    /// migrations.
    pub fn connect(database_url: &str) -> anyhow::Result<Db> {
        let url = DatabaseUrl::parse(database_url)?;
        let size = match &url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                8
            }
            DatabaseUrl::Postgres(_) => 16,
        };
        let db = Db::open(url, size)?;
        let mut conn = db.pool.get().context("connecting to the database")?;
        run_migrations(&mut conn)?;
        Ok(db)
    }

    /// A pool of `size` connections to the same database (already migrated): the message
    /// writer's own, so busy readers never keep it waiting for a connection.
    pub fn sibling(&self, size: u32) -> anyhow::Result<Db> {
        Ok(Db { health: self.health.clone(), ..Db::open(self.url.clone(), size)? })
    }

    fn open(url: DatabaseUrl, size: u32) -> anyhow::Result<Db> {
        let pool = r2d2::Pool::builder()
            .max_size(size)
            // r2d2 would run `SELECT 1` before every checkout; checkouts are tested only for a
            // while after a connection was lost (`PoolHealth`), and `has_broken` drops the rest.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(ConnectionManager { url: url.clone() })
            .context("opening the database")?;
        Ok(Db { pool, url, health: Arc::new(PoolHealth::new()) })
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, never on the executor.
    pub async fn run<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConn) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (pool, health) = (self.pool.clone(), self.health.clone());
        tokio::task::spawn_blocking(move || with_connection(&pool, &health, f)).await?
    }

    /// Runs `f` with a pooled connection on this thread, which may block: for threads of their
    /// own (the message writer).
    pub fn run_here<T>(&self, f: impl FnOnce(&mut DbConn) -> ApiResult<T>) -> ApiResult<T> {
        with_connection(&self.pool, &self.health, f)
    }

    /// A pooled connection for synchronous callers (the command line).
    pub fn get(&self) -> ApiResult<r2d2::PooledConnection<ConnectionManager>> {
        Ok(self.pool.get()?)
    }
}

/// Runs `f` with a pooled connection. A panic in `f` becomes an internal error, and its
/// connection, maybe left inside a transaction, is not pooled again: the message writer's
/// thread lives on, and no later caller inherits a half-done transaction.
fn with_connection<T>(
    pool: &r2d2::Pool<ConnectionManager>,
    health: &PoolHealth,
    f: impl FnOnce(&mut DbConn) -> ApiResult<T>,
) -> ApiResult<T> {
    let mut conn = checkout(pool, health)?;
    let (result, suspect) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn))) {
        // Unavailable: the server may have gone (a PostgreSQL restart).
        Ok(result) => {
            let gone = matches!(result, Err(ApiError::Unavailable(_)));
            (result, gone)
        }
        Err(_) => (Err(ApiError::internal(anyhow::anyhow!("a database call panicked"))), true),
    };
    if suspect && matches!(result, Err(ApiError::Unavailable(_))) {
        health.lost_a_connection();
    }
    // Read as the connection goes back to the pool: a suspect one is dropped instead.
    CONNECTION_SUSPECT.set(suspect);
    drop(conn);
    result
}

/// A pooled connection; while [`PoolHealth`] says connections were lately lost, one that
/// answers `SELECT 1`, the dead ones being dropped as they are found.
fn checkout(pool: &r2d2::Pool<ConnectionManager>, health: &PoolHealth) -> ApiResult<r2d2::PooledConnection<ConnectionManager>> {
    if !health.testing_checkouts() {
        return Ok(pool.get()?);
    }
    // One try more than the pool holds: every dead connection is dropped on the way.
    for _ in 0..=pool.max_size() {
        let mut conn = pool.get()?;
        if conn.batch_execute("SELECT 1").is_ok() {
            return Ok(conn);
        }
        CONNECTION_SUSPECT.set(true);
        drop(conn);
    }
    Err(ApiError::Unavailable(anyhow::anyhow!("no pooled database connection answers")))
}

/// Whether the database answers (for `/readyz`).
pub fn ping(conn: &mut DbConn) -> ApiResult<()> {
    conn.batch_execute("SELECT 1").map_err(|e| ApiError::Unavailable(e.into()))
}

/// Applies every pending migration of the connection's backend. On PostgreSQL an advisory lock
/// keeps several nodes starting together from migrating at once.
pub fn run_migrations(conn: &mut DbConn) -> anyhow::Result<()> {
    const MIGRATION_LOCK: i64 = 0x63_6861_7461_7069; // "chatapi"
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c)?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c)?;
            result
        }
    }
    .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(())
}

/// Runs `f` in a transaction that takes the write lock up front. On SQLite a deferred
/// transaction that reads and then writes can fail with SQLITE_BUSY when another writer got in
/// between, and the busy timeout does not help then; `BEGIN IMMEDIATE` waits for the lock.
pub fn write_tx<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> ApiResult<T>) -> ApiResult<T> {
    type Manager = <DbConn as Connection>::TransactionManager;
    match conn {
        DbConn::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?,
        DbConn::Pg(_) => Manager::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = Manager::rollback_transaction(conn) {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Runs `f` in a write transaction, again (up to `attempts` times) when it fails on a unique
/// index: a concurrent writer got there first, and the next attempt sees its row.
pub fn write_tx_retrying_conflicts<T>(conn: &mut DbConn, attempts: usize, mut f: impl FnMut(&mut DbConn) -> ApiResult<T>) -> ApiResult<T> {
    let mut attempt = 1;
    loop {
        match write_tx(conn, &mut f) {
            Err(crate::error::ApiError::Internal(cause))
                if attempt < attempts && cause.downcast_ref::<DieselError>().is_some_and(is_unique_violation) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether a write failed on a unique index: the database, not a prior check, decides.
pub fn is_unique_violation(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// The current time as stored: UTC without an offset, microsecond precision on both backends.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_database_call_is_an_error_and_its_open_transaction_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).unwrap().sibling(1).unwrap();
        let panicked: ApiResult<()> = db.run_here(|conn| {
            conn.batch_execute("BEGIN IMMEDIATE; CREATE TABLE t (x INTEGER);").unwrap();
            panic!("a bug in the middle of a transaction");
        });
        assert!(matches!(panicked, Err(ApiError::Internal(_))), "{panicked:?}");
        // The pool's only connection was replaced: a new transaction starts, and the table
        // created by the abandoned one is not there.
        let after = db.run_here(|conn| write_tx(conn, |conn| Ok(conn.batch_execute("SELECT count(*) FROM t").is_err())));
        assert!(after.unwrap(), "the abandoned transaction's table must not exist");
    }
}
