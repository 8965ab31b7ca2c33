//! [`Application`]: builds the gateway, binds its listener and serves until stopped.

use crate::faults::FaultSwitch;
use crate::ledger::Ledger;
use crate::routes::{self, AppState, GatewayMetrics};
use crate::settings::Settings;
use anyhow::Context as _;
use platform::actuator::Actuator;
use platform::http::HttpMetrics;
use platform::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A built gateway, listening but not yet serving.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    shutdown: CancellationToken,
}

impl Application {
    /// Builds the gateway and binds its port (0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new(crate::SERVICE_NAME, settings.common.environment.as_str())
            .context("metrics registry")?;
        let state = AppState {
            ledger: Arc::new(Ledger::default()),
            faults: FaultSwitch::new(settings.initial_faults()),
            metrics: GatewayMetrics::new(&metrics).context("gateway metrics")?,
        };
        let http_metrics = HttpMetrics::new(&metrics).context("http metrics")?;
        let actuator = Actuator::new(metrics, shutdown.clone(), Vec::new());
        let api = routes::router(state).merge(crate::openapi::router());
        let router = platform::app::router(api, &actuator, http_metrics);
        let port = settings.common.server_port.unwrap_or(crate::DEFAULT_PORT);
        let listener =
            platform::http::bind(SocketAddr::new(settings.common.server_host, port)).await?;
        let port = listener.local_addr().context("listener address")?.port();
        tracing::info!(port, faults = ?settings.initial_faults(), "payment gateway listening");
        Ok(Self {
            listener,
            port,
            router,
            shutdown,
        })
    }

    /// The port the gateway listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The token that stops the gateway when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        platform::http::serve(self.listener, self.router, self.shutdown)
            .await
            .context("HTTP server failed")?;
        tracing::info!("payment gateway stopped");
        Ok(())
    }
}
