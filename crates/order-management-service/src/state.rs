//! [`AppState`]: what the HTTP handlers share, built once by [`crate::app`].

use platform::auth::{HasJwtKeys, JwtKeys};
use platform::client::ClientAddresses;
use platform::db::Db;
use platform::limit::RateLimiter;
use platform::outbox::Relay;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub jwt: JwtKeys,
    /// Publishes the outbox rows a request wrote as soon as it commits.
    pub relay: Relay,
    pub orders_released_topic: String,
    /// The customer-facing service, asked for orders this service does not have yet.
    pub checkouts: platform::forward::Forwarder,
    /// Anonymous order lookups per client address.
    pub lookups: Arc<RateLimiter>,
    /// `X-Customer-Email` claims per client address: each unmasks an order when right,
    /// so each is a guess, limited as the customer service limits a client's logins.
    pub guesses: Arc<RateLimiter>,
    /// Who a request comes from, for the per-client limits.
    pub clients: ClientAddresses,
}

/// Email claims one client may make at once, and per minute after that: the customer
/// service's per-client login limit.
pub const GUESS_BURST: u32 = 30;
pub const GUESSES_PER_MINUTE: u32 = 30;

impl HasJwtKeys for AppState {
    fn jwt_keys(&self) -> &JwtKeys {
        &self.jwt
    }
}
