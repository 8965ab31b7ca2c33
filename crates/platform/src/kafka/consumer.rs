//! The consumer-group loop: each record is handled inside a context carrying its
//! correlation id and trace, retried with backoff, dead-lettered when hopeless, and only
//! then has its offset stored.
//!
//! Up to [`ConsumerSettings::max_in_flight`] records are handled at once, so a handler
//! that waits on its database does not leave the cores idle; their offsets are still
//! stored in the order the records were consumed, each only once it and every record
//! before it are done, so a crash redelivers (to idempotent handlers) and never skips.
//! A consumed record's offset is stored only after its handler succeeded, or after it
//! was written to `<topic>.dlq` (see [`super::dlq`]); stored offsets are committed every
//! [`COMMIT_INTERVAL`], on rebalance and at shutdown. Committing each record on its own
//! costs the broker a write per record, which capped consumption at a few dozen records
//! a second on our development broker. Consumer lag is read from librdkafka's statistics
//! into `kafka_consumer_records_lag_max`.

use super::client::{client_config, Brokers};
use super::dlq::{self, dlq_topic, Failure};
use super::handler::{caused_by_transient_db_error, Handler, HandlerError, Record};
use super::producer::Producer;
use crate::context::{self, RequestContext, TraceContext, CORRELATION_HEADER, TRACEPARENT_HEADER};
use crate::metrics::Metrics;
use futures::stream::{FuturesOrdered, StreamExt};
use prometheus::{IntCounterVec, IntGaugeVec};
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often stored (processed) offsets are committed.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// Default of [`ConsumerSettings::transient_budget`].
pub const DEFAULT_TRANSIENT_BUDGET: Duration = Duration::from_secs(240);
/// What `max.poll.interval.ms` allows beyond the transient budget: the bounded retries
/// that may follow it, and the handling itself.
const POLL_INTERVAL_MARGIN: Duration = Duration::from_secs(180);

/// A consumer of one group.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: Brokers,
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
    /// Records handled at once (at least 1): for handlers whose records are independent
    /// of each other's order, as idempotent ones keyed by event id are.
    pub max_in_flight: usize,
}

impl ConsumerSettings {
    pub fn new(brokers: &Brokers, group_id: &str, topics: &[&str]) -> Self {
        Self {
            brokers: brokers.clone(),
            group_id: group_id.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            session_timeout: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(100),
            transient_budget: DEFAULT_TRANSIENT_BUDGET,
            max_in_flight: 1,
        }
    }
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

impl ConsumerMetrics {
    /// Creates `dlq_messages_total{topic="<topic>.dlq"}` at 0 for each consumed topic,
    /// so the series exists from start: `increase()` then counts the first dead letter
    /// (it needs a sample before it) and panels show 0 instead of no data.
    pub fn declare_dead_letter_topics(&self, topics: &[String]) {
        for topic in topics {
            self.dead_letters.with_label_values(&[&dlq_topic(topic)]);
        }
    }
}

/// The client's context: it turns librdkafka's statistics into the lag gauge.
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

/// Runs [`run_consumer`] until shutdown, building the client again a second after it
/// fails (a broker not reachable at start-up, say).
pub async fn consume_until_shutdown(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    producer: Producer,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) {
    metrics.declare_dead_letter_topics(&settings.topics);
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

/// Runs a consumer until `shutdown`: each record is handled inside a context carrying
/// its correlation id and trace, retried, dead-lettered when hopeless, then committed.
pub async fn run_consumer(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    producer: Producer,
    metrics: ConsumerMetrics,
    shutdown: CancellationToken,
) -> Result<(), KafkaError> {
    let consumer = subscribe(&settings, &metrics)?;
    tracing::info!(group = %settings.group_id, topics = ?settings.topics, "consumer started");
    let max_in_flight = settings.max_in_flight.max(1);
    // Handled in consumption order, whatever order they finish in.
    let mut in_flight = FuturesOrdered::new();
    let mut receiving = true;
    let mut interrupted = false;
    loop {
        tokio::select! {
            // Finished records first: their offsets, and room for the next.
            biased;
            Some(handled) = in_flight.next(), if !in_flight.is_empty() => {
                let (done, record): (bool, Record) = handled;
                // Shutting down mid-record: it and everything after it stay uncommitted,
                // to be redelivered; the handlers already running are let finish.
                interrupted |= !done;
                if interrupted {
                    receiving = false;
                    continue;
                }
                if let Err(e) = consumer.store_offset(&record.topic, record.partition, record.offset) {
                    tracing::warn!(error = %e, "offset store failed; the record may be redelivered");
                }
            }
            message = next_message(&consumer, &settings, &shutdown),
                if receiving && in_flight.len() < max_in_flight =>
            {
                match message {
                    Some(message) => in_flight.push_back(handle(
                        Record::from_message(&message),
                        &settings, &*handler, &producer, &metrics, &shutdown,
                    )),
                    None => receiving = false,
                }
            }
            else => break,
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final offset commit skipped");
    }
    tracing::info!(group = %settings.group_id, "consumer stopped");
    Ok(())
}

/// Handles one record in its context and span; gives it back with whether it is done
/// (false: interrupted by shutdown).
async fn handle(
    record: Record,
    settings: &ConsumerSettings,
    handler: &dyn Handler,
    producer: &Producer,
    metrics: &ConsumerMetrics,
    shutdown: &CancellationToken,
) -> (bool, Record) {
    let mut ctx = record_context(&record);
    // A child of the span that published the record (its `traceparent`).
    let mut exported = crate::otel::start(
        format!("{} process", record.topic),
        crate::otel::SpanKind::Consumer,
        &mut ctx.trace,
    );
    exported.attribute("messaging.destination.name", record.topic.clone());
    let span = record_span(&record, &ctx);
    let done = context::scope(
        ctx,
        process(settings, handler, producer, metrics, &record, shutdown),
    )
    .instrument(span)
    .await;
    (done, record)
}

/// The group's client, subscribed to its topics. librdkafka commits only the offsets
/// we stored, i.e. those of the records that were processed.
fn subscribe(
    settings: &ConsumerSettings,
    metrics: &ConsumerMetrics,
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    let context = LagContext {
        group: settings.group_id.clone(),
        lag: metrics.lag.clone(),
    };
    let consumer: StreamConsumer<LagContext> = client_config(&settings.brokers)
        .set("group.id", &settings.group_id)
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
    Ok(consumer)
}

/// The next record, waiting out client errors; `None` once `shutdown` is cancelled.
async fn next_message<'c>(
    consumer: &'c StreamConsumer<LagContext>,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
) -> Option<BorrowedMessage<'c>> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return None,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => return Some(message),
            Err(e) => {
                tracing::warn!(error = %e, group = %settings.group_id, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The context a record is handled in: the correlation id and trace of whoever
/// produced it, so its logs and what it publishes carry them on.
fn record_context(record: &Record) -> RequestContext {
    RequestContext {
        correlation_id: context::correlation_id_or_new(record.header(CORRELATION_HEADER)),
        trace: TraceContext::from_traceparent(record.header(TRACEPARENT_HEADER)),
        path: None,
    }
}

/// The span a record's handling logs in, with the ids of its context.
fn record_span(record: &Record, ctx: &RequestContext) -> tracing::Span {
    tracing::info_span!(
        "consume",
        correlationId = %ctx.correlation_id,
        traceId = %ctx.trace.trace_id,
        spanId = %ctx.trace.span_id,
        topic = %record.topic,
        partition = record.partition,
        offset = record.offset,
    )
}

/// Handles one record to completion: handled, or dead-lettered; false when
/// interrupted by shutdown.
async fn process(
    settings: &ConsumerSettings,
    handler: &dyn Handler,
    producer: &Producer,
    metrics: &ConsumerMetrics,
    record: &Record,
    shutdown: &CancellationToken,
) -> bool {
    let failure = match handle_with_retries(settings, handler, record, shutdown).await {
        Handling::Handled => {
            metrics
                .consumed
                .with_label_values(&[&record.topic, "success"])
                .inc();
            return true;
        }
        Handling::Interrupted => return false,
        Handling::Hopeless(failure) => failure,
    };
    let backoff = settings.initial_backoff;
    if !dlq::dead_letter(producer, record, &failure, backoff, shutdown).await {
        return false;
    }
    metrics
        .dead_letters
        .with_label_values(&[&dlq_topic(&record.topic)])
        .inc();
    metrics
        .consumed
        .with_label_values(&[&record.topic, "dead_lettered"])
        .inc();
    true
}

/// How handling a record ended.
enum Handling {
    Handled,
    /// Poison, or retries exhausted: for the dead-letter topic.
    Hopeless(Failure),
    /// Shutdown came first.
    Interrupted,
}

/// Runs the handler until it succeeds, says the record is poison, or has failed
/// [`ConsumerSettings::max_attempts`] times. Transient database trouble is waited out
/// for up to [`ConsumerSettings::transient_budget`] without spending attempts.
async fn handle_with_retries(
    settings: &ConsumerSettings,
    handler: &dyn Handler,
    record: &Record,
    shutdown: &CancellationToken,
) -> Handling {
    let mut delay = settings.initial_backoff;
    let mut attempt = 1;
    let transient_deadline = tokio::time::Instant::now() + settings.transient_budget;
    let mut transient_delay = Duration::from_millis(250);
    loop {
        let wait = match handler.handle(record).await {
            Ok(()) => return Handling::Handled,
            Err(HandlerError::Poison { class, message }) => {
                return Handling::Hopeless(Failure { class, message })
            }
            // The database's trouble, not the record's: wait it out, by time, without
            // spending the record's attempts.
            Err(HandlerError::Retryable(e))
                if caused_by_transient_db_error(&e)
                    && tokio::time::Instant::now() < transient_deadline =>
            {
                tracing::warn!(error = %format!("{e:#}"), retryInMs = transient_delay.as_millis() as u64,
                    "transient failure; the record waits and is tried again");
                let wait = transient_delay;
                transient_delay = (transient_delay * 2).min(Duration::from_secs(5));
                wait
            }
            Err(HandlerError::Retryable(e)) if attempt >= settings.max_attempts => {
                return Handling::Hopeless(Failure {
                    class: "RetriesExhausted".to_owned(),
                    message: format!("{e:#}"),
                });
            }
            Err(HandlerError::Retryable(e)) => {
                tracing::warn!(error = %format!("{e:#}"), attempt, "record failed; retrying");
                let wait = delay;
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
                wait
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return Handling::Interrupted,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
