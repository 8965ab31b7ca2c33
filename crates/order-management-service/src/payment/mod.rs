//! Paying orders: after an order is committed the consumer hands it to the
//! [`PaymentProcessor`], which claims the payment, calls the gateway through the
//! `paymentService` [`breaker`], and records the answer in one transaction together
//! with the order's new state (PAID or FAILED), the `payments.completed` outbox row and,
//! for a decline, the `orders.released` row (ADR 0007). There is no committed state
//! "payment SUCCESS, order not PAID".
//!
//! An unanswered payment stays PENDING (the order PROCESSING) and the [`worker`]
//! resumes it, until the payment deadline ends it. The gateway's idempotency key is the
//! checkout's order id, so no order is charged twice, even by a restored `order_db`.
//! Refunds (cancelled paid orders, late charges, expired payments) are asked for by
//! the [`refunds`] worker.

pub mod breaker;
pub mod client;
pub mod refunds;
pub mod worker;

use crate::db;
use crate::domain::{OrderStatus, PaymentStatus};
use crate::metrics::OrderMetrics;
use crate::outgoing;
use client::{ChargeOrder, ChargeOutcome, GatewayClient};
use events::{PaymentCompleted, PaymentOutcome, ReleasedStatus};
use platform::context::{self, RequestContext};
use platform::db::Db;
use platform::outbox::Relay;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// How long the consumer waits for a free payment slot before it leaves the order to
/// the retry worker.
const HAND_OFF_WAIT: Duration = Duration::from_secs(1);

/// Refund reason of a charge that landed after its order had ended.
pub const LATE_CHARGE_REFUND_REASON: &str = "Charged after the order was cancelled or expired";

/// Payments ended at the deadline per pass at most.
const EXPIRE_BATCH: i64 = 100;

/// Payment method written on payment transactions and events, as the original.
pub const PAYMENT_METHOD: &str = "MOCK";

/// How the processor paces itself.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    pub payments_completed_topic: String,
    pub orders_released_topic: String,
    /// How long a payment may stay unanswered before it ends FAILED.
    pub payment_deadline: Duration,
    /// How long a claim keeps other workers (and cancels) away.
    pub claim_lease: Duration,
    /// First delay before an unanswered payment is resumed; doubled per failed call.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub concurrency: usize,
}

/// Pays orders; cheap to clone.
#[derive(Clone)]
pub struct PaymentProcessor {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    client: GatewayClient,
    relay: Relay,
    metrics: OrderMetrics,
    settings: ProcessorSettings,
    in_flight: Arc<Semaphore>,
}

impl PaymentProcessor {
    pub fn new(
        db: Db,
        client: GatewayClient,
        relay: Relay,
        metrics: OrderMetrics,
        settings: ProcessorSettings,
    ) -> Self {
        let in_flight = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Self {
            inner: Arc::new(Inner {
                db,
                client,
                relay,
                metrics,
                settings,
                in_flight,
            }),
        }
    }

    pub fn client(&self) -> &GatewayClient {
        &self.inner.client
    }

    /// One of the `concurrency` payment slots, waiting up to [`HAND_OFF_WAIT`] for it:
    /// that wait is the backpressure that keeps a backlog in the broker rather than in
    /// memory. `None` when every slot stayed busy; the order is then left to the retry
    /// worker, which takes it up once its hand-off grace has passed.
    pub async fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(HAND_OFF_WAIT, self.inner.in_flight.clone().acquire_owned())
            .await
        {
            Ok(Ok(slot)) => Some(slot),
            _ => None,
        }
    }

    /// How long a claim's lease lasts, in seconds: what the consumer leases a payment
    /// it creates claimed for.
    pub fn claim_lease_secs(&self) -> f64 {
        self.inner.settings.claim_lease.as_secs_f64()
    }

    /// Pays an order the caller created already claimed (PROCESSING, payment leased),
    /// in the background, in the current request context, in `slot`.
    pub fn pay_claimed(&self, slot: OwnedSemaphorePermit, claim: db::payments::Claim) {
        let processor = self.clone();
        let ctx = context::current();
        tokio::spawn(async move {
            let order_id = claim.order_id;
            let work = async {
                if let Err(e) = processor.pay(claim).await {
                    tracing::error!(orderId = %order_id, error = %format!("{e:#}"),
                        "payment processing failed; the retry worker will resume it");
                }
            };
            match ctx {
                Some(ctx) => context::scope(ctx, work).await,
                None => work.await,
            }
            drop(slot);
        });
    }

    /// Waits up to `grace` for payments in flight to finish (at shutdown).
    pub async fn drain(&self, grace: Duration) {
        let all = u32::try_from(self.inner.settings.concurrency.max(1)).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.inner.in_flight.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("payments still in flight at shutdown; the retry worker resumes them");
        }
    }

    /// One payment attempt in a slot of its own (the retry worker's way in).
    pub(crate) async fn process_logged(&self, order_id: Uuid) {
        match self.inner.in_flight.acquire().await {
            Ok(_slot) => self.process_in_slot(order_id).await,
            Err(_) => tracing::warn!(orderId = %order_id, "payment processor closed"),
        }
    }

    async fn process_in_slot(&self, order_id: Uuid) {
        if let Err(e) = self.process(order_id).await {
            tracing::error!(orderId = %order_id, error = %format!("{e:#}"),
                "payment processing failed; the retry worker will resume it");
        }
    }

    /// One payment attempt for an order: claim, call the gateway, record. The caller
    /// holds a slot.
    async fn process(&self, order_id: Uuid) -> anyhow::Result<()> {
        let inner = &self.inner;
        let claim = {
            let mut tx = inner.db.begin().await?;
            let claim =
                db::payments::claim(&mut tx, order_id, inner.settings.claim_lease.as_secs_f64())
                    .await?;
            tx.commit().await?;
            claim
        };
        match claim {
            Some(claim) => self.pay(claim).await,
            None => Ok(()),
        }
    }

    /// Calls the gateway for a claimed payment and records the answer. The caller holds
    /// a slot.
    async fn pay(&self, claim: db::payments::Claim) -> anyhow::Result<()> {
        let inner = &self.inner;
        let order = ChargeOrder {
            order_id: claim.source_order_id,
            order_number: claim.order_number.clone(),
            amount: claim.amount,
            customer_email: claim.customer_email.clone(),
        };
        let started = Instant::now();
        let outcome = platform::otel::in_span_judged(
            "payment charge",
            platform::otel::SpanKind::Internal,
            inner.client.charge(&order),
            |outcome, span| match outcome {
                ChargeOutcome::Approved { .. } => {}
                ChargeOutcome::Declined { reason, .. } => span.error(format!("declined: {reason}")),
                ChargeOutcome::Unavailable { error, .. } => span.error(error.clone()),
            },
        )
        .await;
        let called = !matches!(outcome, ChargeOutcome::Unavailable { called: false, .. });
        if called {
            inner.metrics.payments_attempted.inc();
            inner
                .metrics
                .payment_processing
                .observe(started.elapsed().as_secs_f64());
        }
        match outcome {
            ChargeOutcome::Approved {
                gateway_payment_id,
                external_transaction_id,
            } => {
                platform::otel::in_span(
                    "payment record",
                    platform::otel::SpanKind::Internal,
                    self.record(
                        &claim,
                        PaymentOutcome::Success,
                        Some(&external_transaction_id),
                        None,
                        Some(&gateway_payment_id),
                    ),
                )
                .await?;
            }
            ChargeOutcome::Declined {
                gateway_payment_id,
                reason,
            } => {
                platform::otel::in_span(
                    "payment record",
                    platform::otel::SpanKind::Internal,
                    self.record(
                        &claim,
                        PaymentOutcome::Failed,
                        None,
                        Some(&reason),
                        gateway_payment_id.as_deref(),
                    ),
                )
                .await?;
            }
            ChargeOutcome::Unavailable { error, called } => {
                let failures = claim.attempt_count.saturating_add(i32::from(called));
                let delay = retry_delay(&inner.settings, failures);
                tracing::warn!(
                    orderId = %claim.order_id, orderNumber = %claim.order_number, error = %error,
                    retryInMs = delay.as_millis() as u64,
                    "payment gateway unavailable; order stays PROCESSING"
                );
                let mut conn = inner.db.acquire().await?;
                db::payments::postpone(
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

    /// Records the gateway's answer in one transaction: the payment, the order's new
    /// state (PAID, or FAILED with an `orders.released` row), the PaymentCompleted row;
    /// then publishes the rows at once. An approval of a PENDING payment, the common
    /// answer, is one statement ([`db::payments::record_approved`]); anything else is
    /// recorded step by step. A charge approved after the order ended (cancelled or
    /// expired while the call's lease had run out) is recorded SUCCESS with a refund
    /// requested. False if nothing was recorded (another worker did).
    async fn record(
        &self,
        claim: &db::payments::Claim,
        outcome: PaymentOutcome,
        external_transaction_id: Option<&str>,
        failure_reason: Option<&str>,
        gateway_payment_id: Option<&str>,
    ) -> anyhow::Result<bool> {
        let inner = &self.inner;
        let topic = &inner.settings.payments_completed_topic;
        let event = PaymentCompleted {
            event_id: Uuid::new_v4(),
            event_type: events::PAYMENT_COMPLETED.to_owned(),
            event_version: events::EVENT_VERSION.to_owned(),
            timestamp: events::EventTime::now(),
            correlation_id: Some(outgoing::correlation_id(
                claim.correlation_id.as_deref(),
                &claim.order_number,
            )),
            order_id: claim.order_id,
            order_number: claim.order_number.clone(),
            payment_transaction_id: claim.payment_id,
            status: outcome,
            amount: claim.amount,
            payment_method: PAYMENT_METHOD.to_owned(),
            external_transaction_id: external_transaction_id.map(str::to_owned),
            failure_reason: failure_reason.map(str::to_owned),
        };
        if let (PaymentOutcome::Success, Some(ext), Some(gw)) =
            (outcome, external_transaction_id, gateway_payment_id)
        {
            let row = outgoing::payment_completed(topic, &event)?;
            let mut conn = inner.db.acquire().await?;
            let approved =
                db::payments::record_approved(&mut conn, claim.payment_id, ext, gw, &row).await?;
            drop(conn);
            if let Some(stored_payload) = approved {
                self.recorded(claim, outcome, None);
                inner.relay.publish_now(row.into_message(stored_payload));
                return Ok(true);
            }
        }
        self.record_in_steps(claim, &event, gateway_payment_id)
            .await
    }

    /// [`Self::record`] for any answer, in a transaction of several statements.
    async fn record_in_steps(
        &self,
        claim: &db::payments::Claim,
        event: &PaymentCompleted,
        gateway_payment_id: Option<&str>,
    ) -> anyhow::Result<bool> {
        let inner = &self.inner;
        let settings = &inner.settings;
        let outcome = event.status;
        let external_transaction_id = event.external_transaction_id.as_deref();
        let failure_reason = event.failure_reason.as_deref();
        let (status, order_status) = statuses(outcome);
        let mut tx = inner.db.begin().await?;
        let Some(target) = db::payments::lock_for_record(&mut tx, claim.payment_id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let mut late = false;
        let recorded = if target.payment_status == PaymentStatus::Pending {
            db::payments::record_result(
                &mut tx,
                claim.payment_id,
                status,
                external_transaction_id,
                failure_reason,
                gateway_payment_id,
            )
            .await?
        } else if let (PaymentOutcome::Success, PaymentStatus::Failed, Some(ext), Some(gw)) = (
            outcome,
            target.payment_status,
            external_transaction_id,
            gateway_payment_id,
        ) {
            // The money was taken after the order ended: record it and give it back.
            late = true;
            if target.refund_done {
                tracing::error!(
                    orderId = %claim.order_id, orderNumber = %claim.order_number,
                    "a charge landed after the gateway had answered its refund; reconcile it"
                );
            }
            db::payments::record_late_charge(
                &mut tx,
                claim.payment_id,
                ext,
                gw,
                LATE_CHARGE_REFUND_REASON,
            )
            .await?
        } else {
            false
        };
        if !recorded {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut messages = Vec::with_capacity(2);
        if !late && target.order_status.awaits_payment() {
            db::payments::settle_order(&mut tx, claim.order_id, order_status).await?;
            if outcome == PaymentOutcome::Failed {
                let reason = failure_reason.unwrap_or("Payment declined");
                messages.push(
                    outgoing::order_released(
                        &mut tx,
                        &settings.orders_released_topic,
                        claim.order_id,
                        ReleasedStatus::Failed,
                        reason,
                    )
                    .await?,
                );
            }
        }
        let row = outgoing::payment_completed(&settings.payments_completed_topic, event)?;
        messages.push(db::outbox::insert(&mut tx, row).await?);
        tx.commit().await?;
        self.recorded(claim, outcome, late.then_some(target.order_status));
        for message in messages {
            inner.relay.publish_now(message);
        }
        Ok(true)
    }

    /// Counts and logs a recorded answer; `late_on` is the state of an order that had
    /// ended before its charge landed.
    fn recorded(
        &self,
        claim: &db::payments::Claim,
        outcome: PaymentOutcome,
        late_on: Option<OrderStatus>,
    ) {
        let metrics = &self.inner.metrics;
        match outcome {
            PaymentOutcome::Success => {
                metrics.payments_completed.inc();
                metrics.payments_success.inc();
            }
            PaymentOutcome::Failed => metrics.payments_failed.inc(),
        }
        let (status, order_status) = statuses(outcome);
        match late_on {
            Some(current) => tracing::error!(
                orderId = %claim.order_id, orderNumber = %claim.order_number, current = %current,
                "the gateway charged an order that had ended meanwhile; charge recorded and refund requested"
            ),
            None => tracing::info!(
                orderId = %claim.order_id, orderNumber = %claim.order_number, status = %status,
                orderStatus = %order_status, "payment recorded"
            ),
        }
    }

    /// Ends the payments still unanswered after the payment deadline (see
    /// [`db::payments::expire`]), each order with its `orders.released` row, in one
    /// transaction; then publishes the rows. Returns how many ended.
    pub(crate) async fn expire_overdue(&self) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let deadline = inner.settings.payment_deadline;
        let reason = format!(
            "Payment gateway did not answer within {} s",
            deadline.as_secs()
        );
        let mut tx = inner.db.begin().await?;
        let ended =
            db::payments::expire(&mut tx, deadline.as_secs_f64(), &reason, EXPIRE_BATCH).await?;
        if ended.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut messages = Vec::with_capacity(ended.len());
        for order_id in &ended {
            messages.push(
                outgoing::order_released(
                    &mut tx,
                    &inner.settings.orders_released_topic,
                    *order_id,
                    ReleasedStatus::Failed,
                    &reason,
                )
                .await?,
            );
        }
        tx.commit().await?;
        inner.metrics.payments_expired.inc_by(ended.len() as u64);
        for order_id in &ended {
            tracing::warn!(orderId = %order_id, reason = %reason,
                "payment deadline passed; order FAILED, stock released, refund by key requested");
        }
        for message in messages {
            inner.relay.publish_now(message);
        }
        Ok(ended.len())
    }

    /// The context a resumed payment runs in: the order's correlation id, a new trace.
    pub(crate) fn context_for(correlation_id: Option<String>) -> RequestContext {
        let mut ctx = RequestContext::new_root();
        if let Some(id) = correlation_id {
            ctx.correlation_id = id;
        }
        ctx
    }
}

/// The payment's and the order's state after the gateway's answer.
fn statuses(outcome: PaymentOutcome) -> (PaymentStatus, OrderStatus) {
    match outcome {
        PaymentOutcome::Success => (PaymentStatus::Success, OrderStatus::Paid),
        PaymentOutcome::Failed => (PaymentStatus::Failed, OrderStatus::Failed),
    }
}

/// Delay before resuming a payment (or a refund) after `failures` unanswered calls.
pub(crate) fn retry_delay(settings: &ProcessorSettings, failures: i32) -> Duration {
    let exponent = u32::try_from(failures.saturating_sub(1).max(0))
        .unwrap_or(0)
        .min(16);
    settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(settings.retry_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumption_backs_off_exponentially_up_to_the_cap() {
        let settings = ProcessorSettings {
            payments_completed_topic: "t".into(),
            orders_released_topic: "r".into(),
            payment_deadline: Duration::from_secs(900),
            claim_lease: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            concurrency: 1,
        };
        assert_eq!(retry_delay(&settings, 0), Duration::from_secs(1));
        assert_eq!(retry_delay(&settings, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(&settings, 3), Duration::from_secs(4));
        assert_eq!(retry_delay(&settings, 50), Duration::from_secs(30));
    }
}
