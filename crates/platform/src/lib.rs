//! What every service of the platform shares, so that no service writes it twice.
//!
//! - [`config`]: settings from flags and environment variables, with the service prefix
//!   (`ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS`) and the original's plain fallbacks.
//! - [`telemetry`]: one JSON object per log line, carrying the request's correlation and
//!   W3C trace ids; [`context`] holds those ids for the task that serves a request.
//! - [`client`]: the client address per-client limits key on, from a trusted proxy's
//!   header or the TCP peer.
//! - [`forward`]: a GET passed on to another service, its answer passed back as it is.
//! - [`http`]: the correlation/metrics middleware, the JSON extractor whose rejections are
//!   problem details, fallbacks for unknown routes and methods, and graceful serving.
//! - [`idempotency`]: the `Idempotency-Key` of a request, checked, and the statements
//!   of the keys' table.
//! - [`connections`]: the server loop: header-read and idle time-outs, connection cap.
//! - [`headers`]: the security headers of every answer and the pages' CSP.
//! - [`cors`]: which other origins' pages may call a service from a browser.
//! - [`problem`]: RFC 7807 problem details, the one error body clients ever see.
//! - [`actuator`]: health, liveness, readiness and Prometheus endpoints.
//! - [`openapi`]: the problem-details schema, bearer scheme, standard responses and links
//!   of every API document, served with [`swagger_ui`] next to it.
//! - [`rules`]: request constraints that validators check and schemas document.
//! - [`web`]: files built into the binary, served with `ETag` and cache headers.
//! - [`metrics`]: the Prometheus registry and the process and pool collectors.
//! - [`auth`]: HS256 JWTs with key ids, so secrets rotate without logging anyone out.
//! - [`db`]: the PostgreSQL pool and the append-only migration runner.
//! - [`kafka`]: producer, consumer-group loop with DLQ, topic creation, lag gauge.
//! - [`outbox`]: the relay that publishes transactional-outbox rows with backoff.
//! - [`app`]: `service_main`, the listener a service serves on, the router frame and
//!   the background tasks of a service.
//! - [`shutdown`]: the signal every task stops on.
//! - [`time`]: the original's HTTP time stamps (local date-time, no zone).
//! - [`testing`]: fresh databases and unique topic names for integration tests.

pub mod actuator;
pub mod app;
pub mod auth;
pub mod client;
pub mod config;
pub mod connections;
pub mod context;
pub mod cors;
pub mod db;
pub mod forward;
pub mod headers;
pub mod http;
pub mod idempotency;
mod json_body;
pub mod kafka;
pub mod limit;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod problem;
pub mod rules;
pub mod shutdown;
pub mod swagger_ui;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod web;

pub use problem::{FieldErrors, Problem};
