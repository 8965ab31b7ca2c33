//! Integration tests of the platform crate against the real PostgreSQL and broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actuator;
mod connections;
mod cors;
mod db_errors;
mod http;
mod kafka;
mod migrations;
mod outbox;
mod support;
mod tls;
