//! [`Application`]: opens the ledger's pool, migrates `payment_gateway_db`, binds the
//! listener and serves until stopped.

use crate::faults::FaultSwitch;
use crate::metrics::GatewayMetrics;
use crate::routes;
use crate::settings::Settings;
use crate::state::{AppState, Credentials};
use anyhow::Context as _;
use platform::actuator::{Actuator, HealthIndicator};
use platform::app::Server;
use platform::db::Db;
use platform::http::HttpMetrics;
use platform::metrics::Metrics;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The database used when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/payment_gateway_db";

/// A built gateway, listening but not yet serving.
pub struct Application {
    server: Server,
    router: axum::Router,
}

impl Application {
    /// Builds the gateway: binds its port (0 picks a free one), then migrates
    /// `payment_gateway_db` (waiting up to 30 s for PostgreSQL). The port is bound first
    /// so that a port in use is reported as such, whatever the database's state.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let credentials = Arc::new(Credentials::from_settings(&settings)?);
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new(crate::SERVICE_NAME, settings.common.environment.as_str())
            .context("metrics registry")?;
        let server = Server::bind(&settings.common, crate::DEFAULT_PORT, shutdown.clone()).await?;

        let default_db = sqlx::postgres::PgConnectOptions::from_str(DEFAULT_DATABASE_URL)?;
        let db = Db::new(platform::db::pool(&settings.database, default_db));
        db.register_metrics(&metrics, "payment_gateway_db")
            .context("pool metrics")?;
        platform::db::migrate(db.pool(), &crate::MIGRATOR, Duration::from_secs(30)).await?;

        let gateway_metrics = GatewayMetrics::new(&metrics).context("gateway metrics")?;
        let charges = {
            let mut conn = db.acquire().await.context("ledger connection")?;
            crate::db::ledger::count(&mut conn)
                .await
                .context("counting the ledger")?
        };
        gateway_metrics.set_ledger_size(charges);
        let state = AppState {
            db: db.clone(),
            faults: FaultSwitch::new(settings.initial_faults()),
            metrics: gateway_metrics,
            credentials,
        };
        let http_metrics = HttpMetrics::new(&metrics).context("http metrics")?;
        // Without its ledger the gateway can neither charge nor refund: unready.
        let indicators: Vec<Box<dyn HealthIndicator>> = vec![Box::new(db.health_indicator())];
        // The gateway has no JWT keys: its health never shows details.
        let actuator = Actuator::new(metrics, shutdown.clone(), None, indicators);
        let api = routes::router(state).merge(crate::openapi::router());
        let router = platform::app::router(api, &actuator, http_metrics);
        tracing::info!(port = server.port(), charges, faults = ?settings.initial_faults(), "payment gateway listening");
        Ok(Self { server, router })
    }

    /// The port the gateway listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The token that stops the gateway when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.server.shutdown_token()
    }

    /// Serves until the shutdown token is cancelled, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.serve(self.router).await?;
        tracing::info!("payment gateway stopped");
        Ok(())
    }
}
