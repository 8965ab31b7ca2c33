//! Integration tests of the order service: the real app on port 0 against the real
//! PostgreSQL (a fresh database per test), the real broker (unique topics per test) and
//! the payment gateway app spawned in-process.

mod after_checkout;
mod api;
mod consumer;
mod contract;
mod gateway_tls;
mod helpers;
mod lookups;
mod payments;
mod refunds;
mod restart;
