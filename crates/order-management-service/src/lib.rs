//! The order management service (port 8081): turns `orders.created` events into orders,
//! pays them through the payment gateway, and serves the order API.
//!
//! - [`consumer`]: the `orders.created` handler (one `order_db` transaction guarded by
//!   `processed_events`) and the `payments.completed` check.
//! - [`payment`]: the gateway client, the `paymentService` circuit breaker, the payment
//!   processor, the retry worker that resumes payments the gateway did not answer (and
//!   ends them at the payment deadline), and the refund worker.
//! - [`outgoing`]: the events written to the outbox (`payments.completed`,
//!   `orders.released`) and their headers.
//! - [`db`]: the SQL, next to the code that needs it, and the outbox store.
//! - [`routes`]: the order API under `/api/v1/orders`; [`state`]: what its handlers share.
//! - [`cleanup`]: the job that deletes processed-event rows past their retention.
//! - [`app`]: [`Application`], which wires it all and runs the background tasks.

pub mod app;
pub mod cleanup;
pub mod consumer;
pub mod db;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod outgoing;
pub mod payment;
pub mod routes;
pub mod settings;
pub mod state;

pub use app::Application;
pub use settings::Settings;

/// Prefix of every environment variable of this service.
pub const ENV_PREFIX: &str = "ORDER_SERVICE";
/// Name in logs and in the `application` metric label.
pub const SERVICE_NAME: &str = "order-management-service";
/// Port the service listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8081;
/// The migrations of `order_db`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/order_db");
