//! Integration tests of opsctl against the real PostgreSQL and broker: each test makes
//! its own databases (with the services' migrations) and its own topics.

mod backup;
mod cli;
mod dlq;
mod helpers;
mod idempotency;
mod kafka;
mod managers;
mod outbox;
mod reconcile;
