//! Kafka: the idempotent producer, topic creation, and the consumer-group loop with
//! bounded retries, dead-lettering and manual offset commits.
//!
//! A consumed record's offset is stored only after its handler succeeded, or after it
//! was written to `<topic>.dlq` with headers naming where it came from and why it
//! failed; stored offsets are committed every [`COMMIT_INTERVAL`], on rebalance and at
//! shutdown. Committing each record on its own costs the broker a write per record,
//! which capped consumption at a few dozen records a second on our development broker.
//! Consumer lag is read from librdkafka's statistics into `kafka_consumer_records_lag_max`.

use crate::context::{self, RequestContext, TraceContext, CORRELATION_HEADER, TRACEPARENT_HEADER};
use crate::metrics::Metrics;
use futures::future::BoxFuture;
use prometheus::{IntCounterVec, IntGaugeVec};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Header naming the record's topic of origin on a dead letter (Spring Kafka's name).
pub const DLQ_ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
pub const DLQ_ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
pub const DLQ_ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
pub const DLQ_EXCEPTION_CLASS: &str = "kafka_dlt-exception-fqcn";
pub const DLQ_EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
pub const DLQ_FAILED_AT: &str = "kafka_dlt-failed-at";

/// How often stored (processed) offsets are committed.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// A topic and the settings it is created with.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub retention_ms: u64,
    /// 1 unless the deployment says otherwise ([`crate::config::KafkaSettings::replicated`]).
    pub replication_factor: i32,
    pub min_insync_replicas: Option<i32>,
}

impl TopicSpec {
    /// An event topic: 3 partitions, 7 days.
    pub fn events(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            partitions: 3,
            retention_ms: 7 * 24 * 3600 * 1000,
            replication_factor: 1,
            min_insync_replicas: None,
        }
    }
    /// A dead-letter topic: 1 partition, 30 days.
    pub fn dead_letters(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            partitions: 1,
            retention_ms: 30 * 24 * 3600 * 1000,
            replication_factor: 1,
            min_insync_replicas: None,
        }
    }
    /// An event topic and its `.dlq`.
    pub fn with_dlq(name: &str) -> [Self; 2] {
        [Self::events(name), Self::dead_letters(&dlq_topic(name))]
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    config
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(bootstrap: &str, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create()?;
    let retention: Vec<String> = topics.iter().map(|t| t.retention_ms.to_string()).collect();
    let insync: Vec<Option<String>> = topics
        .iter()
        .map(|t| t.min_insync_replicas.map(|n| n.to_string()))
        .collect();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(retention.iter().zip(&insync))
        .map(|(t, (retention, insync))| {
            let topic = NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            )
            .set("retention.ms", retention)
            .set("cleanup.policy", "delete");
            match insync {
                Some(n) => topic.set("min.insync.replicas", n),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                    tracing::error!(topic = %name, error = %code, "topic creation failed");
                })
            }
        }
    }
    Ok(())
}

/// Keeps trying [`ensure_topics`] in the background until it succeeds or `shutdown`.
pub fn ensure_topics_in_background(
    bootstrap: String,
    topics: Vec<TopicSpec>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match ensure_topics(&bootstrap, &topics).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "topics not created yet; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    });
}

/// An idempotent producer (acks=all, snappy) that stamps every record with the current
/// correlation id and `traceparent`.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    delivery_timeout: Duration,
}

impl Producer {
    pub fn new(bootstrap: &str, delivery_timeout: Duration) -> Result<Self, KafkaError> {
        let inner = base_config(bootstrap)
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
        let mut record = FutureRecord::to(topic).payload(payload).headers(owned);
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
    pub fn health_indicator(
        &self,
        required_for_readiness: bool,
    ) -> impl crate::actuator::HealthIndicator {
        let producer = self.inner.clone();
        crate::actuator::FnIndicator::new("kafka", required_for_readiness, move || {
            let producer = producer.clone();
            Box::pin(async move {
                use crate::actuator::ComponentHealth;
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

/// A consumed record, detached from the client.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// A header's value as text, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    fn from_message<M: Message>(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// Runs [`run_consumer`] until shutdown, building the client again a second after it
/// fails (a broker not reachable at start-up, say).
pub async fn consume_until_shutdown(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    producer: Producer,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let result = run_consumer(
            settings.clone(),
            handler.clone(),
            producer.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, topics = ?settings.topics, "consumer failed; restarting")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Default of [`ConsumerSettings::transient_budget`].
pub const DEFAULT_TRANSIENT_BUDGET: Duration = Duration::from_secs(240);
/// What `max.poll.interval.ms` allows beyond the transient budget: the bounded retries
/// that may follow it, and the handling itself.
const POLL_INTERVAL_MARGIN: Duration = Duration::from_secs(180);

/// Whether a handler's error was caused by a transient database error.
pub fn caused_by_transient_db_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .is_some_and(crate::db::is_transient)
    })
}

/// Maps a database error of a handler working on `database`: data errors can never
/// succeed (poison), the rest may (retryable).
pub fn db_error(database: &'static str) -> impl Fn(sqlx::Error) -> HandlerError {
    move |e| {
        if crate::db::is_data_error(&e) {
            HandlerError::poison("DataIntegrityViolationException", e)
        } else {
            HandlerError::Retryable(anyhow::Error::new(e).context(database))
        }
    }
}

/// Decodes a JSON record value, or says why it is poison.
pub fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Result<T, HandlerError> {
    let payload = record
        .payload
        .as_deref()
        .ok_or_else(|| HandlerError::poison("DeserializationException", "record has no value"))?;
    serde_json::from_slice(payload).map_err(|e| HandlerError::poison("DeserializationException", e))
}

/// Why a record could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The record can never succeed (undecodable, invalid): dead-letter it now.
    #[error("{class}: {message}")]
    Poison { class: String, message: String },
    /// It may succeed later (a database blip): retry with backoff, then dead-letter.
    #[error(transparent)]
    Retryable(#[from] anyhow::Error),
}

impl HandlerError {
    pub fn poison(class: &str, message: impl std::fmt::Display) -> Self {
        Self::Poison {
            class: class.to_owned(),
            message: message.to_string(),
        }
    }
}

/// What a consumer does with each record.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Consumer metrics, shared by every consumer of a service.
#[derive(Clone)]
pub struct ConsumerMetrics {
    lag: IntGaugeVec,
    dead_letters: IntCounterVec,
    consumed: IntCounterVec,
}

impl ConsumerMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            lag: metrics.gauge_vec(
                "kafka_consumer_records_lag_max",
                "Largest lag in records of any assigned partition.",
                &["group", "topic"],
            )?,
            dead_letters: metrics.counter_vec(
                "dlq_messages_total",
                "Records written to a dead-letter topic.",
                &["topic"],
            )?,
            consumed: metrics.counter_vec(
                "kafka_consumer_records_consumed_total",
                "Records consumed and committed.",
                &["topic", "result"],
            )?,
        })
    }
}

/// A consumer of one group.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub bootstrap: String,
    pub group_id: String,
    pub topics: Vec<String>,
    /// Attempts for a retryable failure before the record is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubled on each attempt.
    pub initial_backoff: Duration,
    pub session_timeout: Duration,
    /// Longest time the broker may hold a fetch that has no records for us.
    pub fetch_wait: Duration,
    /// How long a record waits out transient database trouble (an outage, a failover,
    /// no free connection, a deadlock) before its bounded retries, and then the DLQ,
    /// take over. The consumer's `max.poll.interval.ms` is set above it, so waiting
    /// never costs the group a rebalance.
    pub transient_budget: Duration,
}

impl ConsumerSettings {
    pub fn new(bootstrap: &str, group_id: &str, topics: &[&str]) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            group_id: group_id.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            session_timeout: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(100),
            transient_budget: DEFAULT_TRANSIENT_BUDGET,
        }
    }
}

struct LagContext {
    group: String,
    lag: IntGaugeVec,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            let max = topic
                .partitions
                .iter()
                .filter(|(id, _)| **id >= 0)
                .map(|(_, p)| p.consumer_lag)
                .filter(|lag| *lag >= 0)
                .max();
            if let Some(max) = max {
                self.lag.with_label_values(&[&self.group, name]).set(max);
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// Runs a consumer until `shutdown`: each record is handled inside a context carrying
/// its correlation id and trace, retried, dead-lettered when hopeless, then committed.
pub async fn run_consumer(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    producer: Producer,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) -> Result<(), KafkaError> {
    let context = LagContext {
        group: settings.group_id.clone(),
        lag: metrics.lag.clone(),
    };
    let consumer: StreamConsumer<LagContext> = base_config(&settings.bootstrap)
        .set("group.id", &settings.group_id)
        // librdkafka commits only what we stored, i.e. what was processed.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            COMMIT_INTERVAL.as_millis().to_string(),
        )
        .set("queued.max.messages.kbytes", "4096")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "fetch.wait.max.ms",
            settings.fetch_wait.as_millis().to_string(),
        )
        .set("fetch.min.bytes", "1")
        .set(
            "session.timeout.ms",
            settings.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout.as_millis() / 4)
                .max(100)
                .to_string(),
        )
        .set(
            "max.poll.interval.ms",
            (settings.transient_budget + POLL_INTERVAL_MARGIN)
                .as_millis()
                .to_string(),
        )
        .set("statistics.interval.ms", "2000")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create_with_context(context)?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(group = %settings.group_id, topics = ?settings.topics, "consumer started");
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, group = %settings.group_id, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let record = Record::from_message(&message);
        let ctx = RequestContext {
            correlation_id: context::correlation_id_or_new(record.header(CORRELATION_HEADER)),
            trace: TraceContext::from_traceparent(record.header(TRACEPARENT_HEADER)),
            path: None,
        };
        let span = tracing::info_span!(
            "consume",
            correlationId = %ctx.correlation_id,
            traceId = %ctx.trace.trace_id,
            spanId = %ctx.trace.span_id,
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
        );
        let done = context::scope(
            ctx,
            process(
                &settings, &*handler, &producer, &metrics, &record, &shutdown,
            ),
        )
        .instrument(span)
        .await;
        if !done {
            // Shutting down mid-record: leave it uncommitted so it is redelivered.
            break;
        }
        if let Err(e) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %e, "offset store failed; the record may be redelivered");
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final offset commit skipped");
    }
    tracing::info!(group = %settings.group_id, "consumer stopped");
    Ok(())
}

/// Handles one record to completion; false when interrupted by shutdown.
async fn process(
    settings: &ConsumerSettings,
    handler: &dyn Handler,
    producer: &Producer,
    metrics: &ConsumerMetrics,
    record: &Record,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = settings.initial_backoff;
    let mut attempt = 1;
    let transient_deadline = tokio::time::Instant::now() + settings.transient_budget;
    let mut transient_delay = Duration::from_millis(250);
    let (class, message) = loop {
        match handler.handle(record).await {
            Ok(()) => {
                metrics
                    .consumed
                    .with_label_values(&[&record.topic, "success"])
                    .inc();
                return true;
            }
            Err(HandlerError::Poison { class, message }) => break (class, message),
            // The database's trouble, not the record's: wait it out, by time, without
            // spending the record's attempts.
            Err(HandlerError::Retryable(e))
                if caused_by_transient_db_error(&e)
                    && tokio::time::Instant::now() < transient_deadline =>
            {
                tracing::warn!(error = %format!("{e:#}"), retryInMs = transient_delay.as_millis() as u64,
                    "transient failure; the record waits and is tried again");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(transient_delay) => {}
                }
                transient_delay = (transient_delay * 2).min(Duration::from_secs(5));
            }
            Err(HandlerError::Retryable(e)) if attempt >= settings.max_attempts => {
                break ("RetriesExhausted".to_owned(), format!("{e:#}"));
            }
            Err(HandlerError::Retryable(e)) => {
                tracing::warn!(error = %format!("{e:#}"), attempt, "record failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
        }
    };
    let dlq = dlq_topic(&record.topic);
    tracing::error!(error.class = %class, error.message = %message, dlq = %dlq, "record dead-lettered");
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let failed_at = chrono::Utc::now().to_rfc3339();
    let mut headers: Vec<(&str, &str)> = record
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with("kafka_dlt-"))
        .filter_map(|(k, v)| {
            Some((
                k.as_str(),
                v.as_deref().and_then(|v| std::str::from_utf8(v).ok())?,
            ))
        })
        .collect();
    headers.extend([
        (DLQ_ORIGINAL_TOPIC, record.topic.as_str()),
        (DLQ_ORIGINAL_PARTITION, partition.as_str()),
        (DLQ_ORIGINAL_OFFSET, offset.as_str()),
        (DLQ_EXCEPTION_CLASS, class.as_str()),
        (DLQ_EXCEPTION_MESSAGE, message.as_str()),
        (DLQ_FAILED_AT, failed_at.as_str()),
    ]);
    let key = record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok());
    let payload = record.payload.as_deref().unwrap_or_default();
    let mut delay = settings.initial_backoff;
    loop {
        match producer.send(&dlq, key, payload, &headers).await {
            Ok(_) => {
                metrics.dead_letters.with_label_values(&[&dlq]).inc();
                metrics
                    .consumed
                    .with_label_values(&[&record.topic, "dead_lettered"])
                    .inc();
                return true;
            }
            Err(e) => {
                // Never commit a record that is neither handled nor dead-lettered.
                tracing::error!(error = %e, dlq = %dlq, "dead-letter publish failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_database_trouble_is_transient() {
        assert!(caused_by_transient_db_error(&anyhow::Error::new(
            sqlx::Error::PoolTimedOut
        )));
        let wrapped = anyhow::Error::new(sqlx::Error::PoolClosed).context("order_db");
        assert!(caused_by_transient_db_error(&wrapped));
        assert!(!caused_by_transient_db_error(&anyhow::Error::new(
            sqlx::Error::RowNotFound
        )));
        assert!(!caused_by_transient_db_error(&anyhow::anyhow!(
            "payment gateway said no"
        )));
    }

    #[test]
    fn an_undecodable_record_is_poison() {
        let record = Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(b"{not json".to_vec()),
            headers: Vec::new(),
        };
        assert!(matches!(
            decode::<serde_json::Value>(&record),
            Err(HandlerError::Poison { .. })
        ));
    }
}
