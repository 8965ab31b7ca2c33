//! [`AppState`]: what the HTTP handlers share, built once by [`crate::app`].

use platform::auth::{HasJwtKeys, JwtKeys};
use platform::db::Db;
use platform::outbox::Relay;

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
}

impl HasJwtKeys for AppState {
    fn jwt_keys(&self) -> &JwtKeys {
        &self.jwt
    }
}
