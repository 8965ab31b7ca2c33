//! The PostgreSQL pool, its `hikaricp_connections_*` gauges, and the migration runner.
//!
//! Migrations are versioned SQL files, applied in order at start-up and never edited
//! once landed: a file whose checksum no longer matches what was applied stops start-up
//! with a message saying so.

use crate::config::DatabaseSettings;
use crate::metrics::Metrics;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, Opts};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Opens a pool that connects lazily, so a service starts (and reports itself unready)
/// while PostgreSQL is down, and reconnects by itself when it is back.
pub fn pool(settings: &DatabaseSettings, default: PgConnectOptions) -> PgPool {
    let options = settings.database_url.clone().unwrap_or(default);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect_lazy_with(options)
}

/// Applies pending migrations, waiting up to `wait` for the database to accept
/// connections. A modified or missing applied migration is a clear error.
pub async fn migrate(pool: &PgPool, migrator: &Migrator, wait: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(MigrateError::VersionMismatch(version)) => anyhow::bail!(
                "migration {version} was changed after it was applied; migrations are append-only: \
                 restore the original file and add a new migration"
            ),
            Err(MigrateError::VersionMissing(version)) => anyhow::bail!(
                "migration {version} is applied in the database but missing from this build"
            ),
            Err(MigrateError::Execute(e)) | Err(MigrateError::ExecuteMigration(e, _))
                if is_connection_error(&e) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("database migration failed: {e}"),
        }
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

/// Whether `e` is the database's trouble rather than the work's: unreachable, failing
/// over, out of connections or resources, or a concurrency conflict. Trying again
/// later can succeed, so a consumer waits instead of dead-lettering.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources (53300 too many
            // connections); 40001/40P01: serialization failure, deadlock; 25006: a
            // read-only transaction (a failover's old primary); 55P03: lock not
            // available; 57014: statement timeout; 57P01-57P03: shutdown, crash, startup.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "25006" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
                )
        }),
        _ => false,
    }
}

/// Whether `e` is about the data (SQLSTATE class 22 data exception or 23 integrity
/// violation): retrying cannot help.
pub fn is_data_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}

/// Whether `e` is a unique-constraint violation of `constraint`.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// The pool of one database, counting callers that wait for a connection.
///
/// sqlx does not expose its wait queue, so the `hikaricp_connections_pending` gauge
/// counts callers of [`Db::begin`] and [`Db::acquire`] until the pool hands them a
/// connection (an idle one, a new one, or one given back); services take connections
/// through these. The `BEGIN` round trip comes after, and is not waiting for the pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    pending: Arc<AtomicI64>,
}

impl Db {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            pending: Arc::default(),
        }
    }

    /// The pool, for single statements that need no transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let connection = self.acquire().await?;
        // What `PgPool::begin` does after its acquire: the same call, with the wait
        // for the connection counted apart from the `BEGIN` statement.
        sqlx::Transaction::begin(connection, None).await
    }

    /// Takes a connection.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
        let waiting = Pending::new(&self.pending);
        let connection = self.pool.acquire().await;
        drop(waiting);
        connection
    }

    /// Registers `hikaricp_connections{,_active,_idle,_pending,_max,_min}{pool=name}`,
    /// read at scrape time.
    pub fn register_metrics(&self, metrics: &Metrics, name: &str) -> prometheus::Result<()> {
        metrics.register(Box::new(PoolCollector::new(self.clone(), name)?))
    }

    /// The `db` health component: a round trip to PostgreSQL.
    pub fn health_indicator(&self) -> impl crate::actuator::HealthIndicator {
        let pool = self.pool.clone();
        crate::actuator::FnIndicator::new("db", true, move || {
            let pool = pool.clone();
            Box::pin(async move {
                use crate::actuator::ComponentHealth;
                match sqlx::query_scalar::<_, i32>("SELECT 1")
                    .fetch_one(&pool)
                    .await
                {
                    Ok(_) => ComponentHealth::up()
                        .with_detail("database", "PostgreSQL")
                        .with_detail("validationQuery", "SELECT 1"),
                    Err(e) => ComponentHealth::down(e),
                }
            })
        })
    }
}

struct Pending<'a>(&'a AtomicI64);

impl<'a> Pending<'a> {
    fn new(counter: &'a AtomicI64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct PoolCollector {
    db: Db,
    total: IntGauge,
    active: IntGauge,
    idle: IntGauge,
    pending: IntGauge,
    max: IntGauge,
    min: IntGauge,
    descs: Vec<Desc>,
}

impl PoolCollector {
    fn new(db: Db, name: &str) -> prometheus::Result<Self> {
        let gauge = |metric: &str, help: &str| {
            IntGauge::with_opts(
                Opts::new(metric, help)
                    .const_labels(HashMap::from([("pool".to_owned(), name.to_owned())])),
            )
        };
        let total = gauge("hikaricp_connections", "Open connections in the pool.")?;
        let active = gauge("hikaricp_connections_active", "Connections in use.")?;
        let idle = gauge("hikaricp_connections_idle", "Idle connections.")?;
        let pending = gauge(
            "hikaricp_connections_pending",
            "Callers waiting for a connection.",
        )?;
        let max = gauge("hikaricp_connections_max", "Largest pool size.")?;
        let min = gauge("hikaricp_connections_min", "Smallest pool size.")?;
        let descs = [&total, &active, &idle, &pending, &max, &min]
            .iter()
            .flat_map(|g| g.desc().into_iter().cloned())
            .collect();
        Ok(Self {
            db,
            total,
            active,
            idle,
            pending,
            max,
            min,
            descs,
        })
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let pool = &self.db.pool;
        let size = i64::from(pool.size());
        let idle = pool.num_idle() as i64;
        self.total.set(size);
        self.active.set((size - idle).max(0));
        self.idle.set(idle);
        self.pending
            .set(self.db.pending.load(Ordering::Relaxed).max(0));
        self.max
            .set(i64::from(pool.options().get_max_connections()));
        self.min
            .set(i64::from(pool.options().get_min_connections()));
        [
            &self.total,
            &self.active,
            &self.idle,
            &self.pending,
            &self.max,
            &self.min,
        ]
        .iter()
        .flat_map(|g| g.collect())
        .collect()
    }
}
