//! The customer-facing service: catalogue, guest carts and checkout; it publishes
//! `orders.created` and consumes `orders.released` (group `customer-service-group`),
//! giving back the stock of orders that ended FAILED or CANCELLED.
//!
//! - [`app`]: [`Application`] wires settings into the HTTP server and its tasks;
//!   [`state`] is what every handler can reach.
//! - [`routes`]: the HTTP API, one module per resource.
//! - [`catalog`], [`carts`], [`checkout`]: the domain, between the routes and [`db`],
//!   which holds every SQL statement of the service.
//! - [`cache`]: Redis in front of the catalogue and carts (optional at run time), and
//!   [`near_cache`], serialized catalogue answers in this process in front of Redis.
//! - [`orders`]: the order lookup, which answers PENDING until the order service has
//!   the order.
//! - [`outbox`]: the `order_created_outbox` store behind the platform relay.
//! - [`stock_returns`]: the `orders.released` consumer and its `stock_returns` table.
//! - [`managers`]: who may log in.
//! - [`storefront`]: the storefront (`/`) and back office (`/admin`) pages.
//! - [`jobs`]: cleanup of expired idempotency keys and carts.
//! - [`error`], [`validate`], [`metrics`], [`openapi`], [`settings`].

pub mod app;
pub mod cache;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod db;
pub mod error;
pub mod jobs;
pub mod managers;
pub mod metrics;
pub mod near_cache;
pub mod openapi;
pub mod orders;
pub mod outbox;
pub mod routes;
pub mod settings;
pub mod state;
pub mod stock_returns;
pub mod storefront;
pub mod validate;

pub use app::Application;
pub use settings::Settings;

/// The service's name in logs and metrics.
pub const SERVICE_NAME: &str = "customer-facing-service";
/// The port it listens on unless `--server-port` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;
