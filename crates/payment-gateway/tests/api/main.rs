//! Integration tests of the payment gateway: the real app on port 0, over HTTP, each
//! with a PostgreSQL database of its own.

mod callers;
mod contract;
mod faults;
mod helpers;
mod payments;
mod refunds;
mod tls;
