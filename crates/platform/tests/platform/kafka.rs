use futures::future::BoxFuture;
use platform::kafka::{
    dlq_topic, ensure_topics, run_consumer, ConsumerMetrics, ConsumerSettings, Handler,
    HandlerError, Producer, Record, TopicSpec,
};
use platform::metrics::Metrics;
use rdkafka::message::{Headers, Message};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Records what it saw; payloads "poison" are undecodable, "flaky" fails twice first,
/// "failover" meets an unreachable database four times (more than its attempts) first,
/// "slow" is a database blip until `slow_passes` is set.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Option<String>)>>,
    flaky_failures: Mutex<u32>,
    failover_failures: Mutex<u32>,
    slow_passes: AtomicBool,
}

impl Recorder {
    fn passing_slow() -> Self {
        let recorder = Self::default();
        recorder.slow_passes.store(true, Ordering::SeqCst);
        recorder
    }

    /// The payloads handled so far, sorted.
    fn payloads(&self) -> Vec<String> {
        let mut seen: Vec<String> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        seen.sort();
        seen
    }
}

impl Handler for Recorder {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let payload =
                String::from_utf8_lossy(record.payload.as_deref().unwrap_or_default()).into_owned();
            if payload == "poison" {
                return Err(HandlerError::poison("JsonParseException", "not an event"));
            }
            if payload == "flaky" {
                let mut failures = self.flaky_failures.lock().unwrap();
                if *failures < 2 {
                    *failures += 1;
                    return Err(HandlerError::Retryable(anyhow::anyhow!("database blip")));
                }
            }
            if payload == "failover" {
                let mut failures = self.failover_failures.lock().unwrap();
                if *failures < 4 {
                    *failures += 1;
                    return Err(HandlerError::Retryable(
                        anyhow::Error::new(sqlx::Error::PoolTimedOut).context("test_db"),
                    ));
                }
            }
            if payload == "slow" && !self.slow_passes.load(Ordering::SeqCst) {
                return Err(HandlerError::Retryable(anyhow::anyhow!("database blip")));
            }
            if payload == "always-failing" {
                return Err(HandlerError::Retryable(anyhow::anyhow!("still down")));
            }
            let correlation = platform::context::current().map(|c| c.correlation_id);
            self.seen.lock().unwrap().push((payload, correlation));
            Ok(())
        })
    }
}

async fn eventually<F: Fn() -> bool>(what: &str, condition: F) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A fresh topic (with its DLQ), a producer and the consumers' metrics.
struct Fixture {
    bootstrap: platform::kafka::Brokers,
    topic: String,
    producer: Producer,
    metrics: Metrics,
    consumer_metrics: ConsumerMetrics,
}

impl Fixture {
    async fn new(name: &str) -> Self {
        let bootstrap = platform::testing::kafka_brokers();
        let topic = platform::testing::unique_name(name);
        ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
            .await
            .unwrap();
        let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
        let metrics = Metrics::new("platform-test", "test").unwrap();
        let consumer_metrics = ConsumerMetrics::new(&metrics).unwrap();
        Self {
            bootstrap,
            topic,
            producer,
            metrics,
            consumer_metrics,
        }
    }

    /// Settings of a new group reading the topic.
    fn settings(&self) -> ConsumerSettings {
        ConsumerSettings::new(
            &self.bootstrap,
            &platform::testing::unique_name("group"),
            &[&self.topic],
        )
    }

    /// Sends payloads, in order, to one partition (one key).
    async fn send(&self, payloads: &[&str]) {
        for payload in payloads {
            self.producer
                .send(&self.topic, Some("k"), payload.as_bytes(), &[])
                .await
                .unwrap();
        }
    }

    fn consume(&self, settings: &ConsumerSettings, handler: Arc<Recorder>) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_consumer(
            settings.clone(),
            handler,
            self.producer.clone(),
            self.consumer_metrics.clone(),
            shutdown.clone(),
        ));
        Running { shutdown, task }
    }
    /// Starts a consumer with `recorder` and waits until it has handled `count` records.
    async fn consume_until(
        &self,
        settings: &ConsumerSettings,
        recorder: &Arc<Recorder>,
        count: usize,
        what: &str,
    ) -> Running {
        let consumer = self.consume(settings, recorder.clone());
        eventually(what, || recorder.seen.lock().unwrap().len() == count).await;
        consumer
    }
}

/// A consumer running until [`Running::stop`].
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), rdkafka::error::KafkaError>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn topics_are_created_once_and_creating_them_again_is_harmless() {
    // The fixture creates them once.
    let fx = Fixture::new("created").await;
    ensure_topics(&fx.bootstrap, &TopicSpec::with_dlq(&fx.topic))
        .await
        .unwrap();
    let (partition, _) = fx
        .producer
        .send(&fx.topic, Some("k"), b"v", &[])
        .await
        .unwrap();
    assert!((0..3).contains(&partition));
}

#[tokio::test]
async fn records_are_handled_in_their_context_retried_and_poison_goes_to_the_dlq_but_database_trouble_is_waited_out(
) {
    let fx = Fixture::new("events").await;
    let (topic, producer) = (&fx.topic, &fx.producer);
    let recorder = Arc::new(Recorder::default());
    let mut settings = fx.settings();
    settings.initial_backoff = Duration::from_millis(10);
    settings.max_attempts = 3;
    settings.session_timeout = Duration::from_secs(6);
    let consumer = fx.consume(&settings, recorder.clone());

    // Everything goes to one partition (same key), so order is kept.
    let mut ctx = platform::context::RequestContext::new_root();
    ctx.correlation_id = "corr-1".into();
    platform::context::scope(ctx, async {
        for payload in [
            "first",
            "poison",
            "flaky",
            "failover",
            "always-failing",
            "last",
        ] {
            producer
                .send(
                    topic,
                    Some("order-1"),
                    payload.as_bytes(),
                    &[("eventType", "TEST")],
                )
                .await
                .unwrap();
        }
    })
    .await;

    eventually("the good records to be handled", || {
        recorder.seen.lock().unwrap().len() == 4
    })
    .await;
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("first".to_owned(), Some("corr-1".to_owned())),
            ("flaky".to_owned(), Some("corr-1".to_owned())),
            ("failover".to_owned(), Some("corr-1".to_owned())),
            ("last".to_owned(), Some("corr-1".to_owned())),
        ]
    );

    let dlq = platform::testing::reader(&dlq_topic(topic)).unwrap();
    let mut dead = Vec::new();
    while dead.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(30), dlq.recv())
            .await
            .unwrap()
            .unwrap();
        let headers: std::collections::HashMap<String, String> = message
            .headers()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        dead.push((
            String::from_utf8_lossy(message.payload().unwrap()).into_owned(),
            headers,
        ));
    }
    assert_eq!(dead[0].0, "poison");
    let headers = &dead[0].1;
    assert_eq!(&headers["kafka_dlt-original-topic"], topic);
    assert_eq!(headers["kafka_dlt-exception-fqcn"], "JsonParseException");
    assert_eq!(headers["kafka_dlt-exception-message"], "not an event");
    assert!(headers.contains_key("kafka_dlt-original-partition"));
    assert!(headers["kafka_dlt-original-offset"].parse::<i64>().unwrap() >= 0);
    assert_eq!(headers["eventType"], "TEST");
    assert_eq!(headers["X-Correlation-ID"], "corr-1");
    assert_eq!(dead[1].0, "always-failing");
    assert_eq!(dead[1].1["kafka_dlt-exception-fqcn"], "RetriesExhausted");

    let text = fx.metrics.encode();
    let dlq_name = dlq_topic(topic);
    assert_eq!(
        crate::support::metric_value(&text, "dlq_messages_total", &[("topic", &dlq_name)]),
        Some(2.0),
        "{text}"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn a_restarted_consumer_resumes_after_the_last_committed_record() {
    let fx = Fixture::new("resume").await;
    let settings = fx.settings();

    fx.send(&["one"]).await;
    let first = Arc::new(Recorder::default());
    let consumer = fx
        .consume_until(&settings, &first, 1, "the first record")
        .await;
    consumer.stop().await;

    fx.send(&["two"]).await;
    let second = Arc::new(Recorder::default());
    let consumer = fx
        .consume_until(&settings, &second, 1, "the second record")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        second.payloads(),
        vec!["two"],
        "the committed record is not delivered again"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn records_are_handled_side_by_side_but_committed_only_up_to_the_oldest_unfinished_one() {
    let fx = Fixture::new("in_flight").await;
    let mut settings = fx.settings();
    settings.max_in_flight = 4;
    settings.max_attempts = 1_000;
    // One key: one partition, so "slow" is consumed before the others.
    fx.send(&["slow", "a", "b"]).await;

    let first = Arc::new(Recorder::default());
    let consumer = fx
        .consume_until(&settings, &first, 2, "the records behind the slow one")
        .await;
    assert_eq!(
        first.payloads(),
        ["a", "b"],
        "the slow record is still retrying"
    );
    // Several commit intervals: nothing past the slow record may be committed meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    consumer.stop().await;

    let second = Arc::new(Recorder::passing_slow());
    let consumer = fx
        .consume_until(&settings, &second, 3, "the redelivered records")
        .await;
    assert_eq!(
        second.payloads(),
        ["a", "b", "slow"],
        "the unfinished record and those after it are delivered again"
    );
    consumer.stop().await;

    fx.send(&["c"]).await;
    let third = Arc::new(Recorder::default());
    let consumer = fx
        .consume_until(&settings, &third, 1, "the new record")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        third.payloads(),
        ["c"],
        "what was finished is not delivered again"
    );
    consumer.stop().await;
}
