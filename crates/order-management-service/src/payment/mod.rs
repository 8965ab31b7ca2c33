//! Paying orders: after an order is committed the consumer hands it to the
//! [`PaymentProcessor`], which claims the payment, calls the gateway through the
//! `paymentService` [`breaker`], and records the answer together with a
//! `payments.completed` outbox row in one transaction. An unanswered payment stays
//! PENDING (the order PROCESSING) and the [`worker`] resumes it; the gateway's
//! idempotency key is the order id, so no order is charged twice.

pub mod breaker;
pub mod client;
pub mod worker;

use crate::db;
use crate::domain::PaymentStatus;
use crate::metrics::OrderMetrics;
use anyhow::Context as _;
use client::{ChargeOrder, ChargeOutcome, GatewayClient};
use events::{PaymentCompleted, PaymentOutcome};
use platform::context::{self, RequestContext, TraceContext};
use platform::db::Db;
use platform::outbox::Relay;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// How long the consumer waits for a free payment slot before it leaves the order to
/// the retry worker.
const HAND_OFF_WAIT: Duration = Duration::from_secs(1);

/// How long the relay loop leaves a fresh outbox row to the immediate publish.
const OUTBOX_HANDOFF_LEASE: Duration = Duration::from_secs(15);

/// Payment method written on payment transactions and events, as the original.
pub const PAYMENT_METHOD: &str = "MOCK";

/// How the processor paces itself.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    pub payments_completed_topic: String,
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

    /// Pays `order_id` in the background, in the current request context. The caller
    /// (the consumer) waits up to [`HAND_OFF_WAIT`] for one of the `concurrency`
    /// payment slots: that wait is the backpressure that keeps a backlog in the broker
    /// rather than in memory. With no slot by then the order is left to the retry
    /// worker, which takes it up once its hand-off grace has passed.
    pub async fn submit(&self, order_id: Uuid) {
        let Ok(Ok(slot)) =
            tokio::time::timeout(HAND_OFF_WAIT, self.inner.in_flight.clone().acquire_owned()).await
        else {
            tracing::info!(orderId = %order_id, "every payment slot is busy; the retry worker will pay this order");
            return;
        };
        let processor = self.clone();
        let ctx = context::current();
        tokio::spawn(async move {
            let work = processor.process_in_slot(order_id);
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
        let Some(claim) = claim else {
            return Ok(());
        };
        let order = ChargeOrder {
            order_id: claim.order_id,
            order_number: claim.order_number.clone(),
            amount: claim.amount,
            customer_email: claim.customer_email.clone(),
        };
        let started = Instant::now();
        let outcome = inner.client.charge(&order).await;
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
                let recorded = self
                    .record(
                        &claim,
                        PaymentOutcome::Success,
                        Some(&external_transaction_id),
                        None,
                        Some(&gateway_payment_id),
                    )
                    .await?;
                if recorded {
                    inner.metrics.payments_completed.inc();
                }
            }
            ChargeOutcome::Declined {
                gateway_payment_id,
                reason,
            } => {
                self.record(
                    &claim,
                    PaymentOutcome::Failed,
                    None,
                    Some(&reason),
                    gateway_payment_id.as_deref(),
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

    /// Writes the gateway's answer and the PaymentCompleted outbox row in one
    /// transaction, then publishes the row at once. False if the payment was no
    /// longer pending.
    async fn record(
        &self,
        claim: &db::payments::Claim,
        outcome: PaymentOutcome,
        external_transaction_id: Option<&str>,
        failure_reason: Option<&str>,
        gateway_payment_id: Option<&str>,
    ) -> anyhow::Result<bool> {
        let inner = &self.inner;
        let status = match outcome {
            PaymentOutcome::Success => PaymentStatus::Success,
            PaymentOutcome::Failed => PaymentStatus::Failed,
        };
        let mut tx = inner.db.begin().await?;
        let recorded = db::payments::record_result(
            &mut tx,
            claim.payment_id,
            status,
            external_transaction_id,
            failure_reason,
            gateway_payment_id,
        )
        .await?;
        if !recorded {
            tx.rollback().await?;
            if outcome == PaymentOutcome::Success {
                tracing::error!(
                    orderId = %claim.order_id, orderNumber = %claim.order_number,
                    "gateway charged an order whose payment is no longer pending; refund required"
                );
            }
            return Ok(false);
        }
        let correlation_id = claim
            .correlation_id
            .clone()
            .unwrap_or_else(|| format!("payment-{}", claim.order_number));
        let event = PaymentCompleted {
            event_id: Uuid::new_v4(),
            event_type: events::PAYMENT_COMPLETED.to_owned(),
            event_version: events::EVENT_VERSION.to_owned(),
            timestamp: events::EventTime::now(),
            correlation_id: Some(correlation_id.clone()),
            order_id: claim.order_id,
            order_number: claim.order_number.clone(),
            payment_transaction_id: claim.payment_id,
            status: outcome,
            amount: claim.amount,
            payment_method: PAYMENT_METHOD.to_owned(),
            external_transaction_id: external_transaction_id.map(str::to_owned),
            failure_reason: failure_reason.map(str::to_owned),
        };
        let payload = serde_json::to_value(&event).context("PaymentCompleted serialization")?;
        let mut headers = BTreeMap::from([
            (
                events::TYPE_ID_HEADER.to_owned(),
                events::PAYMENT_COMPLETED_TYPE_ID.to_owned(),
            ),
            ("eventId".to_owned(), event.event_id.to_string()),
            ("eventType".to_owned(), events::PAYMENT_COMPLETED.to_owned()),
            (context::CORRELATION_HEADER.to_owned(), correlation_id),
        ]);
        let trace = context::current().map_or_else(TraceContext::new_root, |c| c.trace);
        headers.insert(context::TRACEPARENT_HEADER.to_owned(), trace.traceparent());
        let message = db::outbox::insert(
            &mut tx,
            claim.order_id,
            &inner.settings.payments_completed_topic,
            &payload,
            &headers,
            OUTBOX_HANDOFF_LEASE,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            orderId = %claim.order_id, orderNumber = %claim.order_number, status = %status,
            "payment recorded"
        );
        inner.relay.publish_now(message);
        Ok(true)
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

/// Delay before resuming a payment after `failures` unanswered calls.
fn retry_delay(settings: &ProcessorSettings, failures: i32) -> Duration {
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
