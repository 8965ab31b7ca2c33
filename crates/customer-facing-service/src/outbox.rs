//! The `order_created_outbox` table behind `platform::outbox::Relay`: rows are written
//! by the checkout transaction, published right after its commit, and claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease by the relay of any replica when that first
//! attempt failed. Its SQL is `platform::outbox::PgOutboxStore`, shared with the order
//! service's outbox and `opsctl`.

use platform::db::Db;
use platform::outbox::{OutboxTable, PgOutboxStore};
use std::time::Duration;

/// The outbox table of this service.
pub const OUTBOX: OutboxTable = OutboxTable::OrderCreated;
/// Name of the outbox in metrics labels.
pub const OUTBOX_NAME: &str = OUTBOX.name();
/// How long the checkout's own publish attempt owns a fresh row before the relay may
/// take it over.
pub const FIRST_ATTEMPT_LEASE: Duration = Duration::from_secs(30);

/// The store of `order_created_outbox` in `db`.
pub fn store(db: &Db) -> PgOutboxStore {
    PgOutboxStore::new(db.pool().clone(), OUTBOX)
}
