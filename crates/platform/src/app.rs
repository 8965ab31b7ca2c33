//! The frame of a service process: `main`, the router every service wraps its API in,
//! and the background tasks that stop together.

use crate::actuator::Actuator;
use crate::config::{self, ConfigError};
use crate::http::{self, HttpMetrics, MAX_BODY_BYTES};
use crate::limit::LoadShedding;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs a service's `main`: parses settings (one line on stderr and exit code 2 when
/// they are bad), then runs `body` on a multi-threaded runtime; an error it returns is
/// one line on stderr and exit code 1.
pub fn main<T, F, Fut>(env_prefix: &str, body: F) -> ExitCode
where
    T: clap::Parser,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    run(config::parse::<T>(env_prefix), |settings| async move {
        body(settings).await.map(|()| ExitCode::SUCCESS)
    })
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
