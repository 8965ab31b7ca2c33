//! Connections to the two databases: one small pool each, failing fast with a line
//! that names the database when it cannot be reached.

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Connects to `url`; `what` names the database in errors (`customer_db`).
pub async fn connect(url: &str, what: &str) -> anyhow::Result<PgPool> {
    let options =
        PgConnectOptions::from_str(url).with_context(|| format!("{what}: invalid database URL"))?;
    connect_with(options, what).await
}

/// Connects with ready options.
pub async fn connect_with(options: PgConnectOptions, what: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to {what}"))
}
