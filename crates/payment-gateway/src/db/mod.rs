//! The SQL of `payment_gateway_db`: the statements on charges ([`ledger`]) and refunds
//! ([`refunds`]), each a function on a connection, next to the row types they read.

pub mod ledger;
pub mod refunds;
