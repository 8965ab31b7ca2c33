//! The service's business metrics, named as the runbook queries them.

use platform::metrics::Metrics;
use prometheus::{Histogram, IntCounter};

/// Checkout and cart counters and the checkout latency histogram.
#[derive(Clone)]
pub struct AppMetrics {
    /// Checkouts that started (not replays, fingerprint conflicts or invalid requests).
    pub checkout_attempt: IntCounter,
    /// Checkouts that committed.
    pub checkout_success: IntCounter,
    /// Checkouts that started and failed (empty cart, stock, errors).
    pub checkout_failures: IntCounter,
    /// Successful add-item calls.
    pub cart_items_added: IntCounter,
    /// Duration of the checkout logic.
    pub checkout_duration: Histogram,
}

impl AppMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        let checkout_duration = metrics.histogram(
            "checkout_duration_seconds",
            "Duration of the checkout transaction in seconds.",
        )?;
        Ok(Self {
            checkout_attempt: metrics.counter("checkout_attempt_total", "Checkouts started.")?,
            checkout_success: metrics.counter("checkout_success_total", "Checkouts committed.")?,
            checkout_failures: metrics.counter(
                "checkout_failures_total",
                "Checkouts that started and failed.",
            )?,
            cart_items_added: metrics.counter(
                "cart_items_added_total",
                "Products added to carts (per call, not per unit).",
            )?,
            checkout_duration,
        })
    }
}
