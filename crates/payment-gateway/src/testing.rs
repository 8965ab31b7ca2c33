//! Gateways for other crates' integration tests: each on a free port with a fresh
//! `pgw_<32 hex>` database of its own. The one spawner of gateways for every crate's
//! tests, so they all start it the same way.

use crate::{Application, Settings};
use tokio_util::sync::CancellationToken;

/// The service token of test gateways. Public, so it carries the placeholder mark and no
/// gateway outside local development accepts it.
pub const SERVICE_TOKEN: &str = "test-service-token-REPLACE-ME-0123456789abcdef";
/// The admin token of test gateways (also a placeholder, for the same reason).
pub const ADMIN_TOKEN: &str = "test-admin-token-REPLACE-ME";

/// The `Authorization` value the order service sends to a test gateway.
pub fn service_authorization() -> String {
    format!("Bearer {SERVICE_TOKEN}")
}

/// The `Authorization` value that opens a test gateway's fault knobs.
pub fn admin_authorization() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// Starts `settings` in the background; returns its base URL and the token that stops it.
pub async fn start(settings: Settings) -> anyhow::Result<(String, CancellationToken)> {
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            tracing::error!(error = %e, "test payment gateway failed");
        }
    });
    Ok((base, shutdown))
}

/// Settings of a test gateway with a fresh database of its own, answering fast
/// (1 ms latency); change them before [`start`].
pub async fn settings() -> anyhow::Result<Settings> {
    let database = platform::testing::fresh_database("pgw").await?;
    let mut settings = Settings::for_tests(database)?;
    settings.latency_ms = 1;
    Ok(settings)
}

/// A test gateway with a fresh database, answering fast: its base URL
/// (`http://127.0.0.1:<port>`) and the token that stops it. The database is dropped
/// once the gateway is stopped (or the test's runtime ends).
pub async fn spawn() -> anyhow::Result<(String, CancellationToken)> {
    let settings = settings().await?;
    let database = settings
        .database
        .database_url
        .as_ref()
        .and_then(platform::testing::DatabaseGuard::of);
    let (base, shutdown) = start(settings).await?;
    let stopped = shutdown.clone();
    tokio::spawn(async move {
        stopped.cancelled().await;
        drop(database);
    });
    Ok((base, shutdown))
}
