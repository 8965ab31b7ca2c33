//! The service's business metrics, under the runbook's names.

use platform::metrics::Metrics;
use prometheus::{Histogram, IntCounter, IntGauge};

/// Counters and histograms of orders and payments.
#[derive(Clone)]
pub struct OrderMetrics {
    /// `orders_created_total`: new orders written from `orders.created`.
    pub orders_created: IntCounter,
    /// `payments_attempted_total`: payment attempts that reached the gateway.
    pub payments_attempted: IntCounter,
    /// `payments_completed_total`: successful payments (success rate = completed / attempted).
    pub payments_completed: IntCounter,
    /// `payments_success_total`: approved payments recorded (with the order PAID).
    pub payments_success: IntCounter,
    /// `payments_failed_total`: declined payments recorded (with the order FAILED).
    pub payments_failed: IntCounter,
    /// `payments_expired_total`: payments ended FAILED at the payment deadline.
    pub payments_expired: IntCounter,
    /// `payments_refunded_total`: payments the gateway refunded.
    pub payments_refunded: IntCounter,
    /// `payment_refunds_pending`: refunds requested and not yet answered by the gateway.
    pub refunds_pending: IntGauge,
    /// `order_processing_duration_seconds`: handling of one OrderCreated event.
    pub order_processing: Histogram,
    /// `payment_processing_duration_seconds`: one payment attempt against the gateway.
    pub payment_processing: Histogram,
}

impl OrderMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            orders_created: metrics.counter(
                "orders_created_total",
                "Orders created from orders.created events.",
            )?,
            payments_attempted: metrics.counter(
                "payments_attempted_total",
                "Payment attempts that called the payment gateway.",
            )?,
            payments_completed: metrics
                .counter("payments_completed_total", "Payments the gateway approved.")?,
            payments_success: metrics.counter(
                "payments_success_total",
                "Approved payments recorded, each with its order PAID.",
            )?,
            payments_failed: metrics.counter(
                "payments_failed_total",
                "Declined payments recorded, each with its order FAILED.",
            )?,
            payments_expired: metrics.counter(
                "payments_expired_total",
                "Payments the gateway did not answer within the payment deadline, ended FAILED.",
            )?,
            payments_refunded: metrics
                .counter("payments_refunded_total", "Payments the gateway refunded.")?,
            refunds_pending: metrics.gauge(
                "payment_refunds_pending",
                "Refunds requested and not yet answered by the payment gateway.",
            )?,
            order_processing: metrics.histogram(
                "order_processing_duration_seconds",
                "Time to handle one OrderCreated event.",
            )?,
            payment_processing: metrics.histogram(
                "payment_processing_duration_seconds",
                "Time of one payment attempt against the gateway, retries included.",
            )?,
        })
    }
}
