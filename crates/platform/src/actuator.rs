//! `/actuator/health`, `/actuator/health/liveness`, `/actuator/health/readiness` and
//! `/actuator/prometheus`.
//!
//! Health is checked live on every call, each component with a short timeout and all of
//! them at once. Readiness fails closed: it is 503 while a component the instance cannot
//! serve without is down, and while the instance shuts down. Liveness only says the
//! process answers.

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one component may take to answer a health check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `UP` or `DOWN`, as Spring's actuator says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Up,
    Down,
}

/// One component's state and what the operator should see about it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub status: Status,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl ComponentHealth {
    pub fn up() -> Self {
        Self {
            status: Status::Up,
            details: Map::new(),
        }
    }
    pub fn down(error: impl std::fmt::Display) -> Self {
        let mut details = Map::new();
        details.insert("error".into(), Value::String(error.to_string()));
        Self {
            status: Status::Down,
            details,
        }
    }
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// A dependency whose health the actuator reports.
pub trait HealthIndicator: Send + Sync {
    /// The component's name in `/actuator/health` (`db`, `redis`, `kafka`, ...).
    fn name(&self) -> &str;
    /// Whether the instance is unready while this component is down.
    fn required_for_readiness(&self) -> bool;
    fn check(&self) -> BoxFuture<'_, ComponentHealth>;
}

/// A [`HealthIndicator`] from a closure.
pub struct FnIndicator<F> {
    name: String,
    required: bool,
    check: F,
}

impl<F> FnIndicator<F>
where
    F: Fn() -> BoxFuture<'static, ComponentHealth> + Send + Sync,
{
    pub fn new(name: &str, required_for_readiness: bool, check: F) -> Self {
        Self {
            name: name.to_owned(),
            required: required_for_readiness,
            check,
        }
    }
}

impl<F> HealthIndicator for FnIndicator<F>
where
    F: Fn() -> BoxFuture<'static, ComponentHealth> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn required_for_readiness(&self) -> bool {
        self.required
    }
    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        (self.check)()
    }
}

/// The actuator of one service instance.
#[derive(Clone)]
pub struct Actuator {
    inner: Arc<Inner>,
}

struct Inner {
    indicators: Vec<Box<dyn HealthIndicator>>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl Actuator {
    pub fn new(
        metrics: Metrics,
        shutdown: CancellationToken,
        indicators: Vec<Box<dyn HealthIndicator>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                indicators,
                metrics,
                shutdown,
            }),
        }
    }

    /// Every component's health, checked now.
    pub async fn components(&self) -> Vec<(String, bool, ComponentHealth)> {
        let checks = self.inner.indicators.iter().map(|indicator| async move {
            let health = tokio::time::timeout(CHECK_TIMEOUT, indicator.check())
                .await
                .unwrap_or_else(|_| ComponentHealth::down("health check timed out"));
            (
                indicator.name().to_owned(),
                indicator.required_for_readiness(),
                health,
            )
        });
        futures::future::join_all(checks).await
    }

    /// The routes under `/actuator`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/actuator/health", get(health))
            .route("/actuator/health/liveness", get(liveness))
            .route("/actuator/health/readiness", get(readiness))
            .route("/actuator/prometheus", get(prometheus))
            .route("/actuator/info", get(info))
            .with_state(self.clone())
    }
}

fn health_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.spring-boot.actuator.v3+json"),
    );
    response
}

async fn health(State(actuator): State<Actuator>) -> Response {
    let components = actuator.components().await;
    let shutting_down = actuator.inner.shutdown.is_cancelled();
    let ready = !shutting_down
        && components
            .iter()
            .all(|(_, required, h)| !required || h.status == Status::Up);
    let mut tree = Map::new();
    for (name, _, health) in &components {
        tree.insert(
            name.clone(),
            serde_json::to_value(health).unwrap_or(Value::Null),
        );
    }
    tree.insert("livenessState".into(), json!({"status": "UP"}));
    tree.insert(
        "readinessState".into(),
        json!({"status": if ready { "UP" } else { "OUT_OF_SERVICE" }}),
    );
    // The overall status is DOWN only when a required dependency is; an optional one
    // (a cache) shows DOWN in its component without failing the whole.
    let (status, code) = if ready {
        ("UP", StatusCode::OK)
    } else {
        ("DOWN", StatusCode::SERVICE_UNAVAILABLE)
    };
    health_response(code, json!({"status": status, "components": tree}))
}

async fn liveness() -> Response {
    health_response(StatusCode::OK, json!({"status": "UP"}))
}

async fn readiness(State(actuator): State<Actuator>) -> Response {
    if actuator.inner.shutdown.is_cancelled() {
        return health_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "OUT_OF_SERVICE"}),
        );
    }
    let components = actuator.components().await;
    let down: Vec<&str> = components
        .iter()
        .filter(|(_, required, h)| *required && h.status == Status::Down)
        .map(|(name, _, _)| name.as_str())
        .collect();
    if down.is_empty() {
        health_response(StatusCode::OK, json!({"status": "UP"}))
    } else {
        health_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "OUT_OF_SERVICE", "down": down}),
        )
    }
}

async fn prometheus(State(actuator): State<Actuator>) -> Response {
    let mut response = actuator.inner.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn info() -> Response {
    health_response(
        StatusCode::OK,
        json!({"app": {"version": env!("CARGO_PKG_VERSION")}}),
    )
}
