//! The SQL of `customer_db`, one module per table group. Every statement of the service
//! is here; functions take the connection or transaction they run on (or the pool),
//! return what the rows say, and leave what it means (404, 409) to their callers.

pub mod carts;
pub mod categories;
pub mod checkout;
pub mod managers;
pub mod outbox;
pub mod products;
pub mod stock_returns;
