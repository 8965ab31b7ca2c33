//! [`AppState`]: what the HTTP handlers share, built once by [`crate::app`].

use crate::faults::FaultSwitch;
use crate::metrics::GatewayMetrics;
use platform::db::Db;
use std::sync::Arc;

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub faults: FaultSwitch,
    pub metrics: GatewayMetrics,
    /// What `/admin/faults` requires as a bearer token; open when `None` (local only).
    pub admin_token: Option<Arc<platform::config::Secret>>,
}
