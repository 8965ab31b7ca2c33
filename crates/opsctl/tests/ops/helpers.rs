//! Fresh databases migrated like the services', topics with unique names, and records.

use platform::kafka::{ensure_topics, Producer, TopicSpec};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

pub async fn customer_db() -> (PgPool, String) {
    migrated(sqlx::migrate!("../../migrations/customer_db")).await
}

pub async fn order_db() -> (PgPool, String) {
    migrated(sqlx::migrate!("../../migrations/order_db")).await
}

async fn migrated(migrator: sqlx::migrate::Migrator) -> (PgPool, String) {
    let options = platform::testing::fresh_database("ops")
        .await
        .expect("fresh database");
    let name = options.get_database().expect("named").to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .expect("connects");
    migrator.run(&pool).await.expect("migrations apply");
    (pool, name)
}

/// A URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let server = platform::testing::server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

pub fn bootstrap() -> String {
    platform::testing::kafka_bootstrap()
}

pub fn brokers() -> platform::kafka::Brokers {
    platform::testing::kafka_brokers()
}

/// Creates topics with `partitions` partitions each.
pub async fn topics(names: &[&str], partitions: i32) {
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|n| TopicSpec {
            partitions,
            retention_ms: 3_600_000,
            ..TopicSpec::events(n)
        })
        .collect();
    ensure_topics(&brokers(), &specs)
        .await
        .expect("topics created");
}

pub fn producer() -> Producer {
    Producer::new(&brokers(), Duration::from_secs(10)).expect("producer")
}

/// Minutes ago as a UTC wall-clock time.
pub fn minutes_ago(minutes: i64) -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc() - chrono::Duration::minutes(minutes)
}

/// The part of ADR 0007's schema that reconcile reads, for the databases of a test:
/// `stock_returns` in customer_db (customer_db migration 0002) and, in order_db, payment
/// status `REFUNDED` and the `refund_*` columns (order_db migration 0002). Those
/// migrations are written on other branches; everything here is `IF NOT EXISTS`, so
/// once they are merged (and applied by [`customer_db`] / [`order_db`]) this changes
/// nothing, and until then the tests still run against the ADR's names.
pub async fn adr_0007_schema(customer: &PgPool, order: &PgPool) {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS stock_returns (
             order_id     UUID PRIMARY KEY,
             order_number VARCHAR(20) NOT NULL,
             event_id     UUID NOT NULL,
             order_status VARCHAR(20) NOT NULL,
             reason       TEXT,
             items        JSONB NOT NULL,
             returned_at  TIMESTAMP NOT NULL)",
    )
    .execute(customer)
    .await
    .expect("stock_returns");
    sqlx::query("ALTER TYPE payment_status ADD VALUE IF NOT EXISTS 'REFUNDED'")
        .execute(order)
        .await
        .expect("REFUNDED");
    sqlx::query(
        "ALTER TABLE payment_transactions
             ADD COLUMN IF NOT EXISTS refund_requested_at    TIMESTAMP,
             ADD COLUMN IF NOT EXISTS refund_reason          TEXT,
             ADD COLUMN IF NOT EXISTS refunded_at            TIMESTAMP,
             ADD COLUMN IF NOT EXISTS refund_id              VARCHAR(100),
             ADD COLUMN IF NOT EXISTS refunded_amount        DECIMAL(10, 2),
             ADD COLUMN IF NOT EXISTS refund_attempt_count   INTEGER NOT NULL DEFAULT 0,
             ADD COLUMN IF NOT EXISTS refund_next_attempt_at TIMESTAMP,
             ADD COLUMN IF NOT EXISTS refund_last_error      TEXT",
    )
    .execute(order)
    .await
    .expect("refund columns");
}

/// A payment gateway of the real crate on a free port, with a fresh ledger database of
/// its own: its base URL and what stops it.
pub async fn gateway() -> (String, impl FnOnce()) {
    let (base, stop) = payment_gateway::testing::spawn()
        .await
        .expect("gateway starts on a fresh database");
    (base, move || stop.cancel())
}
