//! A small app built only from platform pieces, and a log sink tests can read.

use axum::Router;
use platform::actuator::{Actuator, HealthIndicator};
use platform::config::HttpServerSettings;
use platform::http::HttpMetrics;
use platform::metrics::Metrics;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every JSON log line written so far by this test binary.
pub fn log_lines() -> Vec<serde_json::Value> {
    let buffer = logs();
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect()
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        platform::telemetry::init_with_sink("platform-test", "info", Box::new(buffer.clone()))
            .unwrap();
        buffer
    })
}

pub struct TestApp {
    pub address: String,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    pub client: reqwest::Client,
}

/// Serves `api` wrapped by `platform::app::router` with the given health indicators.
pub async fn spawn(api: Router, indicators: Vec<Box<dyn HealthIndicator>>) -> TestApp {
    spawn_with_keys(api, indicators, None).await
}

/// As [`spawn`], with an actuator that shows details to a manager of `keys`.
pub async fn spawn_with_keys(
    api: Router,
    indicators: Vec<Box<dyn HealthIndicator>>,
    keys: Option<platform::auth::JwtKeys>,
) -> TestApp {
    spawn_with_all(api, indicators, keys, HttpServerSettings::default()).await
}

/// As [`spawn`], serving with the given connection limits and headers.
pub async fn spawn_with_settings(api: Router, settings: HttpServerSettings) -> TestApp {
    spawn_with_all(api, vec![], None, settings).await
}

async fn spawn_with_all(
    api: Router,
    indicators: Vec<Box<dyn HealthIndicator>>,
    keys: Option<platform::auth::JwtKeys>,
    settings: HttpServerSettings,
) -> TestApp {
    logs();
    let metrics = Metrics::new("platform-test", "test").unwrap();
    let shutdown = CancellationToken::new();
    let actuator = Actuator::new(metrics.clone(), shutdown.clone(), keys, indicators);
    let router = platform::app::router(api, &actuator, HttpMetrics::new(&metrics).unwrap());
    let listener = platform::http::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(platform::http::serve(
        listener,
        router,
        shutdown.clone(),
        settings,
    ));
    TestApp {
        address,
        metrics,
        shutdown,
        client: reqwest::Client::new(),
    }
}

pub use platform::testing::metric_value;
