//! The payment gateway stub: a real HTTP service on port 9090 standing in for a
//! Stripe-like processor (architecture.md section 5).
//!
//! - [`settings`]: flags and `PAYMENT_GATEWAY_*` variables, including the fault knobs.
//! - [`ledger`]: the in-memory ledger; one charge per `Idempotency-Key`, ever.
//! - [`faults`]: success rate, latency, error status and hang, switchable at run time.
//! - [`routes`]: `/api/v1/payments` and `/admin/faults`.
//! - [`openapi`]: the OpenAPI document served at `/v3/api-docs`.
//! - [`app`]: [`Application`], which binds the listener and serves until stopped.

pub mod app;
pub mod error;
pub mod faults;
pub mod ledger;
pub mod openapi;
pub mod routes;
pub mod settings;

pub use app::Application;
pub use settings::Settings;

/// Prefix of every environment variable of this service.
pub const ENV_PREFIX: &str = "PAYMENT_GATEWAY";
/// Name in logs and in the `application` metric label.
pub const SERVICE_NAME: &str = "payment-gateway";
/// Port the gateway listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9090;
