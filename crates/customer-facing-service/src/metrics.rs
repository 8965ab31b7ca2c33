//! The service's business metrics, named as the runbook queries them.

use events::ReleasedStatus;
use platform::metrics::Metrics;
use prometheus::{Histogram, IntCounter, IntCounterVec};

/// Checkout, cart and stock-return counters and the checkout latency histogram.
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
    /// Orders whose stock was returned, by the status they ended in.
    pub stock_returns: IntCounterVec,
    /// Units added back to the catalogue (lines whose product still existed).
    pub stock_returned_units: IntCounter,
    /// `orders.released` events for an order whose stock was returned already.
    pub stock_return_duplicates: IntCounter,
    /// Lines of returned orders whose product no longer existed (nothing added back).
    pub stock_return_lines_not_applied: IntCounter,
}

impl AppMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        let checkout_duration = metrics.histogram(
            "checkout_duration_seconds",
            "Duration of the checkout transaction in seconds.",
        )?;
        let stock_returns = metrics.counter_vec(
            "stock_returns_total",
            "Orders ended FAILED or CANCELLED whose stock was returned, by that status.",
            &["status"],
        )?;
        // Both series exist from start-up, so rate() and alerts see a 0, not nothing.
        for status in [ReleasedStatus::Failed, ReleasedStatus::Cancelled] {
            stock_returns.with_label_values(&[status_label(status)]);
        }
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
            stock_returns,
            stock_returned_units: metrics.counter(
                "stock_returned_units_total",
                "Units of stock added back by released orders.",
            )?,
            stock_return_duplicates: metrics.counter(
                "stock_return_duplicates_total",
                "orders.released events for an order whose stock was returned already.",
            )?,
            stock_return_lines_not_applied: metrics.counter(
                "stock_return_lines_not_applied_total",
                "Lines of released orders whose product no longer exists (nothing added back).",
            )?,
        })
    }
}

/// The `status` label (and `stock_returns.order_status` value) of `status`.
pub fn status_label(status: ReleasedStatus) -> &'static str {
    match status {
        ReleasedStatus::Failed => "FAILED",
        ReleasedStatus::Cancelled => "CANCELLED",
    }
}
