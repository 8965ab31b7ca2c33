//! The refund worker: asks the gateway to give back what it charged for payments with a
//! refund requested (a cancelled paid order, a charge that landed after its order
//! ended, a payment that reached its deadline). The refund's key is
//! `refund-<orderId>` and it names the charge by its key, the checkout's `orderId`, so
//! asking twice refunds once.
//!
//! - `REFUNDED`: the payment becomes REFUNDED (`refunded_at`, `refund_id`,
//!   `refunded_amount`).
//! - `NOTHING_CHARGED`: the refund is done and the payment keeps its status; the
//!   gateway has closed the key, so no late request can charge it.
//! - no usable answer: asked again later with backoff, forever; never dropped
//!   (`payment_refunds_pending` counts them).
//!
//! A claimed refund's next attempt moves past a lease, so replicas do not ask for the
//! same refund at once (the gateway would answer the second with the first anyway).

use super::client::{GatewayClient, RefundOutcome};
use super::{retry_delay, PaymentProcessor, ProcessorSettings};
use crate::db;
use crate::domain::PaymentStatus;
use crate::metrics::OrderMetrics;
use platform::context;
use platform::db::Db;
use rust_decimal::Decimal;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Refunds asked for per pass at most.
const BATCH: i64 = 20;

/// What the worker needs.
#[derive(Clone)]
pub struct RefundWorker {
    pub db: Db,
    pub client: GatewayClient,
    pub metrics: OrderMetrics,
    pub settings: ProcessorSettings,
}

/// Runs until `shutdown`, looking for due refunds every `interval`.
pub async fn run(worker: RefundWorker, interval: Duration, shutdown: CancellationToken) {
    tracing::info!(
        intervalMs = interval.as_millis() as u64,
        "refund worker started"
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = worker.pass().await {
            tracing::warn!(error = %format!("{e:#}"), "refund pass failed");
        }
    }
    tracing::info!("refund worker stopped");
}

impl RefundWorker {
    /// One pass: refresh the pending gauge, then ask for every due refund.
    async fn pass(&self) -> anyhow::Result<()> {
        let claims = {
            let mut conn = self.db.acquire().await?;
            let pending = db::payments::refunds_pending(&mut conn).await?;
            self.metrics.refunds_pending.set(pending);
            if pending == 0 {
                return Ok(());
            }
            db::payments::claim_refunds(&mut conn, BATCH, self.settings.claim_lease.as_secs_f64())
                .await?
        };
        for claim in claims {
            let mut ctx = PaymentProcessor::context_for(claim.correlation_id.clone());
            // Part of the trace of the request that asked for it (the cancel).
            ctx.trace = context::TraceContext::from_traceparent(claim.traceparent.as_deref());
            let mut span = platform::otel::start(
                "payment refund",
                platform::otel::SpanKind::Internal,
                &mut ctx.trace,
            );
            let refunded = context::scope(ctx, self.refund(&claim)).await;
            if let Err(e) = &refunded {
                span.error(format!("{e:#}"));
            }
            drop(span);
            if let Err(e) = refunded {
                tracing::warn!(orderId = %claim.order_id, error = %format!("{e:#}"),
                    "refund not recorded; it is asked for again after its lease");
            }
        }
        let mut conn = self.db.acquire().await?;
        let pending = db::payments::refunds_pending(&mut conn).await?;
        self.metrics.refunds_pending.set(pending);
        Ok(())
    }

    async fn refund(&self, claim: &db::payments::RefundClaim) -> anyhow::Result<()> {
        let payment_key = claim.source_order_id.to_string();
        let refund_key = format!("refund-{payment_key}");
        let outcome = self
            .client
            .refund(&payment_key, &refund_key, claim.reason.as_deref())
            .await;
        let mut conn = self.db.acquire().await?;
        match outcome {
            RefundOutcome::Refunded { refund_id, amount } => {
                let recorded = db::payments::record_refund(
                    &mut conn,
                    claim.payment_id,
                    Some(PaymentStatus::Refunded),
                    &refund_id,
                    amount,
                )
                .await?;
                if recorded {
                    self.metrics.payments_refunded.inc();
                    tracing::info!(orderId = %claim.order_id, orderNumber = %claim.order_number,
                        refundId = %refund_id, amount = %amount, "payment refunded");
                }
            }
            RefundOutcome::NothingCharged { refund_id } => {
                db::payments::record_refund(
                    &mut conn,
                    claim.payment_id,
                    None,
                    &refund_id,
                    Decimal::ZERO,
                )
                .await?;
                tracing::info!(orderId = %claim.order_id, orderNumber = %claim.order_number,
                    refundId = %refund_id, "nothing was charged; the payment key is closed");
            }
            RefundOutcome::Unavailable { error, called } => {
                let failures = claim.attempt_count.saturating_add(i32::from(called));
                let delay = retry_delay(&self.settings, failures);
                tracing::warn!(orderId = %claim.order_id, orderNumber = %claim.order_number,
                    error = %error, retryInMs = delay.as_millis() as u64,
                    "payment gateway could not refund now; asking again later");
                db::payments::postpone_refund(
                    &mut conn,
                    claim.payment_id,
                    &error,
                    called,
                    delay.as_secs_f64(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
