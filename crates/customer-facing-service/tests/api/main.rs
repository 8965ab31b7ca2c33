//! Integration tests: the real application on port 0 against the real PostgreSQL
//! (a fresh database per test), Redis (a unique key prefix per app) and broker (a
//! unique topic per app).

mod auth;
mod bad_input;
mod cache;
mod carts;
mod catalog;
mod checkout;
mod closed_by_default;
mod events;
mod health;
mod helpers;
mod hung_redis;
mod openapi;
mod order_lookup;
mod pages;
mod stock_returns;
