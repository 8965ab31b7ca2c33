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
    ensure_topics(&bootstrap(), &specs)
        .await
        .expect("topics created");
}

pub fn producer() -> Producer {
    Producer::new(&bootstrap(), Duration::from_secs(10)).expect("producer")
}

/// Minutes ago as a UTC wall-clock time.
pub fn minutes_ago(minutes: i64) -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc() - chrono::Duration::minutes(minutes)
}
