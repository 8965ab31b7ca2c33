//! Integration tests of the payment gateway: the real app on port 0, over HTTP.

mod contract;
mod faults;
mod helpers;
mod payments;
