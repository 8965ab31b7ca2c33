//! The frame of a service process: `main`, the listener it serves on, the router every
//! service wraps its API in, and the background tasks that stop together.

use crate::actuator::Actuator;
use crate::config::{self, CommonSettings, ConfigError, HttpServerSettings};
use crate::http::{self, HttpMetrics, MAX_BODY_BYTES};
use crate::limit::LoadShedding;
use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What tells one service's `main` from another's; [`service_main`] does the rest.
pub struct Service<T, A, B, R> {
    /// Prefix of the service's own environment variables (`ORDER_SERVICE`).
    pub env_prefix: &'static str,
    /// The service's name in every log line.
    pub name: &'static str,
    /// The log filter among the settings.
    pub log_level: fn(&T) -> &str,
    /// Builds the service from its settings: listening, not yet serving.
    pub build: fn(T) -> B,
    /// The token that stops the built service; ctrl-c and SIGTERM cancel it.
    pub shutdown_token: fn(&A) -> CancellationToken,
    /// Serves until the token is cancelled, then stops what the service runs.
    pub run_until_stopped: fn(A) -> R,
}

/// A service's `main`: parses settings (one line on stderr and exit code 2 when they
/// are bad), starts the JSON logs, builds the service, and runs it until ctrl-c or
/// SIGTERM; an error on the way is one line on stderr and exit code 1.
pub fn service_main<T, A, B, R>(service: Service<T, A, B, R>) -> ExitCode
where
    T: clap::Parser,
    B: Future<Output = anyhow::Result<A>>,
    R: Future<Output = anyhow::Result<()>>,
{
    run(
        config::parse::<T>(service.env_prefix),
        |settings| async move {
            crate::telemetry::init(service.name, (service.log_level)(&settings))?;
            // Held to the end: dropping it flushes the spans not yet exported.
            let _traces = crate::otel::init(service.name)?;
            let app = (service.build)(settings).await?;
            crate::shutdown::cancel_on_signal((service.shutdown_token)(&app));
            (service.run_until_stopped)(app).await?;
            Ok(ExitCode::SUCCESS)
        },
    )
}

/// The frame of any of our binaries: `--help` printed (exit 0), bad settings one line
/// (exit 2), then `body` on a multi-threaded runtime, whose error is one line (exit 1).
pub fn run<T, F, Fut>(parsed: Result<T, ConfigError>, body: F) -> ExitCode
where
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let settings = match parsed {
        Ok(settings) => settings,
        Err(ConfigError::Display(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(line)) => {
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body(settings)) {
        Ok(code) => code,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            tracing::error!(error = %line, "stopped with an error");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// A service's listener, bound but not serving yet, and the token that stops it.
pub struct Server {
    listener: TcpListener,
    port: u16,
    shutdown: CancellationToken,
    settings: HttpServerSettings,
}

impl Server {
    /// Binds the host and port of `common`, `default_port` when it sets none (0 picks a
    /// free one).
    pub async fn bind(
        common: &CommonSettings,
        default_port: u16,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let port = common.server_port.unwrap_or(default_port);
        let listener = http::bind(SocketAddr::new(common.server_host, port)).await?;
        let port = listener.local_addr().context("listener address")?.port();
        Ok(Self {
            listener,
            port,
            shutdown,
            settings: common.http.clone(),
        })
    }

    /// The port bound: the one asked for, or the one picked.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The token that stops serving when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves `router` until the token is cancelled, then drains in-flight requests;
    /// within the connection limits and with the security headers of the settings.
    pub async fn serve(self, router: Router) -> anyhow::Result<()> {
        http::serve(self.listener, router, self.shutdown, self.settings)
            .await
            .context("HTTP server failed")
    }
}

/// Wraps a service's API routes with load shedding (the actuator is never shed, so
/// probes answer under load), the actuator, the problem-details fallbacks, the body
/// limit and the observability middleware.
pub fn router(api: Router, actuator: &Actuator, http_metrics: HttpMetrics) -> Router {
    api.layer(axum::middleware::from_fn_with_state(
        LoadShedding::default(),
        crate::limit::shed,
    ))
    .merge(actuator.router())
    .fallback(http::not_found)
    .method_not_allowed_fallback(http::method_not_allowed)
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(axum::middleware::from_fn_with_state(
        http_metrics,
        http::observe,
    ))
}

/// Background tasks of a service that stop on one token.
pub struct Tasks {
    shutdown: CancellationToken,
    set: JoinSet<()>,
}

impl Tasks {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            set: JoinSet::new(),
        }
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns a task; it should return soon after the shutdown token is cancelled.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, task: F) {
        self.set.spawn(task);
    }

    /// Cancels the token and waits up to `grace` for every task to finish.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.cancel();
        let all = async { while self.set.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background tasks did not stop in time; aborting them");
            self.set.abort_all();
        }
    }
}
