//! [`GatewayMetrics`]: what the gateway counts, next to the platform's HTTP and pool
//! metrics.

use platform::metrics::Metrics;
use prometheus::{IntCounterVec, IntGauge};

/// The gateway's own metrics.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// `payments_gateway_charges_total{result="SUCCEEDED"|"DECLINED"}`: charges made.
    pub(crate) charges: IntCounterVec,
    /// `payments_gateway_requests_total{outcome}`: charged, replayed, injected_error, rejected.
    pub(crate) requests: IntCounterVec,
    /// `payments_gateway_ledger_charges`: rows in `gateway_charges`.
    pub(crate) ledger_size: IntGauge,
    /// `payments_gateway_refunds_total{status="REFUNDED"|"NOTHING_CHARGED"}`: refunds made.
    pub(crate) refunds: IntCounterVec,
}

impl GatewayMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        let charges = metrics.counter_vec(
            "payments_gateway_charges_total",
            "Charges made by the gateway, by result.",
            &["result"],
        )?;
        for result in ["SUCCEEDED", "DECLINED"] {
            charges.with_label_values(&[result]);
        }
        let refunds = metrics.counter_vec(
            "payments_gateway_refunds_total",
            "Refunds made by the gateway, by status.",
            &["status"],
        )?;
        for status in ["REFUNDED", "NOTHING_CHARGED"] {
            refunds.with_label_values(&[status]);
        }
        Ok(Self {
            charges,
            refunds,
            requests: metrics.counter_vec(
                "payments_gateway_requests_total",
                "Charge requests by outcome (charged, replayed, injected_error, rejected).",
                &["outcome"],
            )?,
            ledger_size: metrics.gauge(
                "payments_gateway_ledger_charges",
                "Charges in the gateway's ledger (payment_gateway_db), voided keys included.",
            )?,
        })
    }

    /// Sets the ledger gauge to the stored count (at start-up).
    pub fn set_ledger_size(&self, charges: i64) {
        self.ledger_size.set(charges);
    }
}
