//! What every handler can reach: the pool, the cache, the keys, the metrics, the
//! outbox relay and the order lookup, built once by [`crate::app::Application`].

use crate::cache::Cache;
use crate::managers::LoginGuard;
use crate::metrics::AppMetrics;
use crate::orders::OrderLookup;
use platform::auth::{HasJwtKeys, JwtKeys};
use platform::client::ClientAddresses;
use platform::db::Db;
use platform::limit::RateLimiter;
use platform::outbox::Relay;
use std::sync::Arc;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

/// The shared parts of the running service.
pub struct StateInner {
    pub db: Db,
    pub cache: Cache,
    pub keys: JwtKeys,
    pub metrics: AppMetrics,
    pub relay: Relay,
    pub orders_created_topic: String,
    pub logins: LoginGuard,
    pub orders: OrderLookup,
    /// Anonymous order lookups per client address.
    pub lookups: RateLimiter,
    /// Who a request comes from, for the per-client limits.
    pub clients: ClientAddresses,
}

impl AppState {
    /// Shares `inner` between every clone.
    pub fn new(inner: StateInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.inner
    }
}

impl HasJwtKeys for AppState {
    fn jwt_keys(&self) -> &JwtKeys {
        &self.inner.keys
    }
}
