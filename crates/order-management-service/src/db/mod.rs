//! The SQL of `order_db`, one module per concern; functions that write take the
//! transaction they write in.

pub mod events;
pub mod orders;
pub mod outbox;
pub mod payments;
