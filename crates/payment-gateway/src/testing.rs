//! Gateways for other crates' integration tests: each on a free port with a fresh
//! `pgw_<32 hex>` database of its own (which `scripts/test.sh` drops on its next run).

use crate::{Application, Settings};
use tokio_util::sync::CancellationToken;

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
/// (`http://127.0.0.1:<port>`) and the token that stops it.
pub async fn spawn() -> anyhow::Result<(String, CancellationToken)> {
    start(settings().await?).await
}
