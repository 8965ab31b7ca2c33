//! `/actuator/health`, `/actuator/health/liveness`, `/actuator/health/readiness` and
//! `/actuator/prometheus`.
//!
//! A background task checks every component every [`REFRESH_INTERVAL`] (each with
//! [`CHECK_TIMEOUT`], all at once) and caches the results; the health endpoints answer
//! from that cache, so a flood of probes never becomes a flood of database round trips.
//! Readiness fails closed: it is 503 while a component the instance cannot serve without
//! is down, while the cache is missing or older than [`MAX_CACHE_AGE`], and at once when
//! the instance shuts down. Liveness only says the process answers.
//!
//! As Spring's `show-details: when-authorized`: anyone sees the overall status and each
//! component's status; only a caller with a valid `MANAGER` token sees the details. A
//! service built without JWT keys (the gateway) never shows details. Even then a DOWN
//! component carries a short stable description, never the raw error, which goes to the
//! service log instead.

use crate::auth::{JwtKeys, ROLE_MANAGER};
use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long one component may take to answer a health check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the background task checks every component.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Cached results older than this no longer say anything: readiness fails closed.
pub const MAX_CACHE_AGE: Duration = Duration::from_secs(10);
/// How long a request waits for the very first refresh (started at construction) before
/// answering unready.
const FIRST_REFRESH_WAIT: Duration = Duration::from_secs(3);

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
    /// The raw error, for the service log only: it may name hosts, users or SQL.
    #[serde(skip)]
    raw_error: Option<String>,
}

impl ComponentHealth {
    pub fn up() -> Self {
        Self {
            status: Status::Up,
            details: Map::new(),
            raw_error: None,
        }
    }

    /// DOWN because of `error`: the body shows only a short stable description of it
    /// ("unreachable", "timed out", ...); the raw text is logged when the state changes.
    pub fn down(error: impl std::fmt::Display) -> Self {
        let raw = error.to_string();
        let mut health = Self::down_because(describe(&raw));
        health.raw_error = Some(raw);
        health
    }

    /// DOWN for a reason that is safe to show as it is (a fixed text, no error value).
    pub fn down_because(reason: &'static str) -> Self {
        let mut details = Map::new();
        details.insert("error".into(), Value::String(reason.to_owned()));
        Self {
            status: Status::Down,
            details,
            raw_error: None,
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The text `error` detail shown to a manager.
    pub fn error_description(&self) -> Option<&str> {
        self.details.get("error").and_then(Value::as_str)
    }
}

/// A short stable description of a raw error: what an operator needs to know, without
/// the host names, user names or statements that raw driver errors carry.
fn describe(raw: &str) -> &'static str {
    let lower = raw.to_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        "timed out"
    } else if [
        "refused",
        "unreachable",
        "resolve",
        "dns",
        "connect",
        "transport",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        "unreachable"
    } else {
        "error; see the service log"
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

/// One component's last checked health.
#[derive(Debug, Clone)]
pub struct CheckedComponent {
    pub name: String,
    pub required_for_readiness: bool,
    pub health: ComponentHealth,
}

/// The results of one refresh of every component.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    components: Vec<CheckedComponent>,
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
    /// Keys that verify a manager's token; without them details are never shown.
    keys: Option<JwtKeys>,
    cache: watch::Sender<Option<Arc<Snapshot>>>,
}

impl Actuator {
    /// An actuator over `indicators`, refreshed in the background until `shutdown`.
    /// The first refresh starts at once, so a freshly started instance is not unready
    /// for a whole refresh interval. Must be called inside a tokio runtime; outside one
    /// nothing refreshes and readiness stays 503 (fail closed).
    pub fn new(
        metrics: Metrics,
        shutdown: CancellationToken,
        keys: Option<JwtKeys>,
        indicators: Vec<Box<dyn HealthIndicator>>,
    ) -> Self {
        let (cache, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            indicators,
            metrics,
            shutdown: shutdown.clone(),
            keys,
            cache,
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(refresh_loop(Arc::downgrade(&inner), shutdown));
            }
            Err(_) => {
                tracing::error!("actuator built outside a tokio runtime: health is never checked")
            }
        }
        Self { inner }
    }

    /// Every component's last checked health, waiting for the first refresh if it has
    /// not finished yet; `None` when there is none.
    pub async fn components(&self) -> Option<Vec<CheckedComponent>> {
        self.snapshot().await.map(|s| s.components.clone())
    }

    async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let mut rx = self.inner.cache.subscribe();
        let current = rx.borrow().clone();
        if current.is_some() {
            return current;
        }
        let first = tokio::time::timeout(FIRST_REFRESH_WAIT, rx.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|snapshot| snapshot.clone());
        first
    }

    /// Whether the request carries a valid token with the `MANAGER` role. A bad token
    /// is not refused here: the caller just sees what anyone sees.
    fn shows_details_to(&self, headers: &HeaderMap) -> bool {
        let Some(keys) = &self.inner.keys else {
            return false;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .and_then(|token| keys.verify(token.trim()).ok())
            .is_some_and(|claims| claims.roles.iter().any(|r| r == ROLE_MANAGER))
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

/// Checks every component at once, each within [`CHECK_TIMEOUT`].
async fn check_all(indicators: &[Box<dyn HealthIndicator>]) -> Vec<CheckedComponent> {
    let checks = indicators.iter().map(|indicator| async move {
        let health = tokio::time::timeout(CHECK_TIMEOUT, indicator.check())
            .await
            .unwrap_or_else(|_| ComponentHealth::down_because("timed out"));
        CheckedComponent {
            name: indicator.name().to_owned(),
            required_for_readiness: indicator.required_for_readiness(),
            health,
        }
    });
    futures::future::join_all(checks).await
}

/// Refreshes the cache every [`REFRESH_INTERVAL`] until shutdown or until the actuator
/// is dropped (it holds only a weak reference, so a dropped app does not leak checks).
async fn refresh_loop(inner: Weak<Inner>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(REFRESH_INTERVAL);
    // A slow round (every check timing out) must not be followed by a burst of catch-up.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: HashMap<String, Status> = HashMap::new();
    loop {
        // The first tick completes at once: the first refresh starts at construction.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let components = tokio::select! {
            _ = shutdown.cancelled() => return,
            components = check_all(&inner.indicators) => components,
        };
        log_changes(&mut last, &components);
        inner.cache.send_replace(Some(Arc::new(Snapshot {
            at: Instant::now(),
            components,
        })));
    }
}

/// Logs a component going down (with the raw error, which the body never shows) and
/// coming back, once per change rather than on every refresh.
fn log_changes(last: &mut HashMap<String, Status>, components: &[CheckedComponent]) {
    for c in components {
        let previous = last.insert(c.name.clone(), c.health.status);
        match (previous, c.health.status) {
            (Some(Status::Down), Status::Down) | (None | Some(Status::Up), Status::Up) => {}
            (_, Status::Down) => tracing::warn!(
                component = %c.name,
                required_for_readiness = c.required_for_readiness,
                error = c
                    .health
                    .raw_error
                    .as_deref()
                    .or(c.health.error_description())
                    .unwrap_or("unknown"),
                "health component is down"
            ),
            (Some(Status::Down), Status::Up) => {
                tracing::info!(component = %c.name, "health component is up again")
            }
        }
    }
}

/// The snapshot if it is recent enough to decide readiness on.
fn fresh(snapshot: Option<&Arc<Snapshot>>) -> Option<&Arc<Snapshot>> {
    snapshot.filter(|s| s.at.elapsed() <= MAX_CACHE_AGE)
}

fn health_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.spring-boot.actuator.v3+json"),
    );
    response
}

async fn health(State(actuator): State<Actuator>, headers: HeaderMap) -> Response {
    let details = actuator.shows_details_to(&headers);
    let snapshot = actuator.snapshot().await;
    let shutting_down = actuator.inner.shutdown.is_cancelled();
    let ready = !shutting_down
        && fresh(snapshot.as_ref()).is_some_and(|s| {
            s.components
                .iter()
                .all(|c| !c.required_for_readiness || c.health.status == Status::Up)
        });
    let mut tree = Map::new();
    // A stale snapshot still shows the last known statuses; readiness says it is stale.
    for c in snapshot.iter().flat_map(|s| &s.components) {
        let value = if details {
            serde_json::to_value(&c.health).unwrap_or(Value::Null)
        } else {
            json!({"status": c.health.status})
        };
        tree.insert(c.name.clone(), value);
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
    let out_of_service = |body: Value| health_response(StatusCode::SERVICE_UNAVAILABLE, body);
    if actuator.inner.shutdown.is_cancelled() {
        return out_of_service(json!({"status": "OUT_OF_SERVICE"}));
    }
    let snapshot = actuator.snapshot().await;
    let Some(snapshot) = fresh(snapshot.as_ref()) else {
        // No recent check: the refresh task is stuck or gone, so nothing vouches for
        // the dependencies.
        return out_of_service(
            json!({"status": "OUT_OF_SERVICE", "reason": "health not checked recently"}),
        );
    };
    let down: Vec<&str> = snapshot
        .components
        .iter()
        .filter(|c| c.required_for_readiness && c.health.status == Status::Down)
        .map(|c| c.name.as_str())
        .collect();
    if down.is_empty() {
        health_response(StatusCode::OK, json!({"status": "UP"}))
    } else {
        out_of_service(json!({"status": "OUT_OF_SERVICE", "down": down}))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_errors_become_short_stable_descriptions() {
        assert_eq!(
            describe("error communicating with database: Connection refused (os error 111)"),
            "unreachable"
        );
        assert_eq!(
            describe("pool timed out while waiting for an open connection"),
            "timed out"
        );
        assert_eq!(
            describe(
                "error returned from database: password authentication failed for user \"app\""
            ),
            "error; see the service log"
        );
    }

    #[test]
    fn a_down_component_never_serialises_its_raw_error() {
        let health = ComponentHealth::down("password authentication failed for user \"app\"");
        let body = serde_json::to_string(&health).unwrap();
        assert!(!body.contains("password"), "{body}");
        assert_eq!(
            health.error_description(),
            Some("error; see the service log")
        );
    }
}
