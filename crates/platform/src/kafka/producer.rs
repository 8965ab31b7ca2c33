//! The producer every service publishes with: idempotent, acknowledged by all in-sync
//! replicas, and stamping each record with the correlation id and `traceparent` of the
//! request or record being served, so a trace follows an event across services.

use super::client::{client_config, Brokers};
use crate::actuator::{ComponentHealth, FnIndicator, HealthIndicator};
use crate::context::{self, CORRELATION_HEADER, TRACEPARENT_HEADER};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use std::time::Duration;

/// An idempotent producer (acks=all, snappy) that stamps every record with the current
/// correlation id and `traceparent`.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    delivery_timeout: Duration,
}

impl Producer {
    pub fn new(brokers: &Brokers, delivery_timeout: Duration) -> Result<Self, KafkaError> {
        let inner = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "snappy")
            .set("linger.ms", "1")
            .set("partitioner", "murmur2_random")
            // Bounded: the outboxes, not the client's memory, hold what the broker has not taken.
            .set("queue.buffering.max.kbytes", "16384")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .create()?;
        Ok(Self {
            inner,
            delivery_timeout,
        })
    }

    /// Sends one record and waits for the broker's acknowledgement. Returns the
    /// partition and offset it was written at.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(i32, i64), KafkaError> {
        let mut record = FutureRecord::to(topic)
            .payload(payload)
            .headers(stamped_headers(headers));
        if let Some(key) = key {
            record = record.key(key);
        }
        self.inner
            .send(record, self.delivery_timeout)
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(e, _)| e)
    }

    /// Sends what is buffered; called at shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.inner.flush(timeout) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }

    /// The `kafka` health component: the broker answers a metadata request.
    pub fn health_indicator(&self, required_for_readiness: bool) -> impl HealthIndicator {
        let producer = self.inner.clone();
        FnIndicator::new("kafka", required_for_readiness, move || {
            let producer = producer.clone();
            Box::pin(async move {
                let result = tokio::task::spawn_blocking(move || {
                    producer
                        .client()
                        .fetch_metadata(None, Duration::from_millis(1500))
                        .map(|m| m.brokers().len())
                })
                .await;
                match result {
                    Ok(Ok(brokers)) => ComponentHealth::up().with_detail("brokers", brokers),
                    Ok(Err(e)) => ComponentHealth::down(e),
                    Err(e) => ComponentHealth::down(e),
                }
            })
        })
    }
}

/// `headers`, plus the current correlation id and `traceparent` where the caller did
/// not set them itself (a replayed dead letter keeps its own).
fn stamped_headers(headers: &[(&str, &str)]) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new();
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    for (k, v) in headers {
        owned = owned.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    if let Some(ctx) = context::current() {
        if !has(CORRELATION_HEADER) {
            owned = owned.insert(Header {
                key: CORRELATION_HEADER,
                value: Some(ctx.correlation_id.as_bytes()),
            });
        }
        if !has(TRACEPARENT_HEADER) {
            let traceparent = ctx.trace.traceparent();
            owned = owned.insert(Header {
                key: TRACEPARENT_HEADER,
                value: Some(traceparent.as_bytes()),
            });
        }
    }
    owned
}
