//! The payment gateway stub: a real HTTP service on port 9090 standing in for a
//! Stripe-like processor (architecture.md section 5).
//!
//! - [`settings`]: flags and `PAYMENT_GATEWAY_*` variables: the database and the fault knobs.
//! - [`ledger`]: charges in `payment_gateway_db`; one per `Idempotency-Key`, ever,
//!   across concurrent requests and restarts.
//! - [`refunds`]: refunds of those charges, and voiding keys never charged (ADR 0007).
//! - [`db`]: the SQL of both, one function a statement.
//! - [`faults`]: success rate, latency, error status and hang, switchable at run time.
//! - [`routes`]: `/api/v1/payments`, `/api/v1/refunds` and `/admin/faults`; [`state`]:
//!   what their handlers share; [`rules`]: what a request's fields may hold.
//! - [`metrics`]: what the gateway counts.
//! - [`openapi`]: the OpenAPI document served at `/v3/api-docs`.
//! - [`app`]: [`Application`], which migrates the ledger, binds the listener and serves.
//! - [`testing`]: a gateway with a fresh database for other crates' integration tests.

pub mod app;
pub mod db;
pub mod error;
pub mod faults;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod refunds;
pub mod routes;
pub mod rules;
pub mod settings;
pub mod state;
pub mod testing;

pub use app::{Application, DEFAULT_DATABASE_URL};
pub use settings::Settings;

/// Prefix of every environment variable of this service.
pub const ENV_PREFIX: &str = "PAYMENT_GATEWAY";
/// Name in logs and in the `application` metric label.
pub const SERVICE_NAME: &str = "payment-gateway";
/// Port the gateway listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9090;
/// The migrations of `payment_gateway_db`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/payment_gateway_db");
