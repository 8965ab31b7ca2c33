//! The order and payment states, as PostgreSQL enums and as the API writes them. They
//! live in [`events::order_view`], beside the order view both services answer with.

pub use events::order_view::{OrderStatus, PaymentStatus};
