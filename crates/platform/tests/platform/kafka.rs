use futures::future::BoxFuture;
use platform::kafka::{
    dlq_topic, ensure_topics, run_consumer, ConsumerMetrics, ConsumerSettings, Handler,
    HandlerError, Producer, Record, TopicSpec,
};
use platform::metrics::Metrics;
use rdkafka::message::{Headers, Message};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Records what it saw; payloads "poison" are undecodable, "flaky" fails twice first,
/// "failover" meets an unreachable database four times (more than its attempts) first.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Option<String>)>>,
    flaky_failures: Mutex<u32>,
    failover_failures: Mutex<u32>,
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

#[tokio::test]
async fn topics_are_created_once_and_creating_them_again_is_harmless() {
    let bootstrap = platform::testing::kafka_bootstrap();
    let topic = platform::testing::unique_name("created");
    ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
        .await
        .unwrap();
    ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
        .await
        .unwrap();
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
    let (partition, _) = producer.send(&topic, Some("k"), b"v", &[]).await.unwrap();
    assert!((0..3).contains(&partition));
}

#[tokio::test]
async fn records_are_handled_in_their_context_retried_and_poison_goes_to_the_dlq_but_database_trouble_is_waited_out(
) {
    let bootstrap = platform::testing::kafka_bootstrap();
    let topic = platform::testing::unique_name("events");
    ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
        .await
        .unwrap();
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
    let metrics = Metrics::new("platform-test", "test").unwrap();
    let consumer_metrics = ConsumerMetrics::new(&metrics).unwrap();
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let mut settings = ConsumerSettings::new(
        &bootstrap,
        &platform::testing::unique_name("group"),
        &[&topic],
    );
    settings.initial_backoff = Duration::from_millis(10);
    settings.max_attempts = 3;
    settings.session_timeout = Duration::from_secs(6);
    let consumer = tokio::spawn(run_consumer(
        settings,
        recorder.clone(),
        producer.clone(),
        consumer_metrics,
        shutdown.clone(),
    ));

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
                    &topic,
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

    let dlq = platform::testing::reader(&dlq_topic(&topic)).unwrap();
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
    assert_eq!(headers["kafka_dlt-original-topic"], topic);
    assert_eq!(headers["kafka_dlt-exception-fqcn"], "JsonParseException");
    assert_eq!(headers["kafka_dlt-exception-message"], "not an event");
    assert!(headers.contains_key("kafka_dlt-original-partition"));
    assert!(headers["kafka_dlt-original-offset"].parse::<i64>().unwrap() >= 0);
    assert_eq!(headers["eventType"], "TEST");
    assert_eq!(headers["X-Correlation-ID"], "corr-1");
    assert_eq!(dead[1].0, "always-failing");
    assert_eq!(dead[1].1["kafka_dlt-exception-fqcn"], "RetriesExhausted");

    let text = metrics.encode();
    let dlq_name = dlq_topic(&topic);
    assert_eq!(
        crate::support::metric_value(&text, "dlq_messages_total", &[("topic", &dlq_name)]),
        Some(2.0),
        "{text}"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), consumer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_restarted_consumer_resumes_after_the_last_committed_record() {
    let bootstrap = platform::testing::kafka_bootstrap();
    let topic = platform::testing::unique_name("resume");
    ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
        .await
        .unwrap();
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
    let metrics = Metrics::new("platform-test", "test").unwrap();
    let consumer_metrics = ConsumerMetrics::new(&metrics).unwrap();
    let group = platform::testing::unique_name("group");
    let settings = ConsumerSettings::new(&bootstrap, &group, &[&topic]);

    producer.send(&topic, Some("k"), b"one", &[]).await.unwrap();
    let first = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        settings.clone(),
        first.clone(),
        producer.clone(),
        consumer_metrics.clone(),
        shutdown.clone(),
    ));
    eventually("the first record", || first.seen.lock().unwrap().len() == 1).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    producer.send(&topic, Some("k"), b"two", &[]).await.unwrap();
    let second = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        settings,
        second.clone(),
        producer,
        consumer_metrics,
        shutdown.clone(),
    ));
    eventually("the second record", || {
        second.seen.lock().unwrap().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<String> = second
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        seen,
        vec!["two"],
        "the committed record is not delivered again"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Fails "slow" as a database blip until opened; records everything else it handles.
#[derive(Default)]
struct Gate {
    open: std::sync::atomic::AtomicBool,
    seen: Mutex<Vec<String>>,
}

impl Handler for Gate {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let payload =
                String::from_utf8_lossy(record.payload.as_deref().unwrap_or_default()).into_owned();
            if payload == "slow" && !self.open.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(HandlerError::Retryable(anyhow::anyhow!("database blip")));
            }
            self.seen.lock().unwrap().push(payload);
            Ok(())
        })
    }
}

#[tokio::test]
async fn records_are_handled_side_by_side_but_committed_only_up_to_the_oldest_unfinished_one() {
    let bootstrap = platform::testing::kafka_bootstrap();
    let topic = platform::testing::unique_name("in_flight");
    ensure_topics(&bootstrap, &TopicSpec::with_dlq(&topic))
        .await
        .unwrap();
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
    let metrics = Metrics::new("platform-test", "test").unwrap();
    let consumer_metrics = ConsumerMetrics::new(&metrics).unwrap();
    let group = platform::testing::unique_name("group");
    let mut settings = ConsumerSettings::new(&bootstrap, &group, &[&topic]);
    settings.max_in_flight = 4;
    settings.max_attempts = 1_000;
    let consume = |handler: Arc<Gate>| {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_consumer(
            settings.clone(),
            handler,
            producer.clone(),
            consumer_metrics.clone(),
            shutdown.clone(),
        ));
        (shutdown, task)
    };
    let sorted = |gate: &Gate| {
        let mut seen = gate.seen.lock().unwrap().clone();
        seen.sort();
        seen
    };
    // One key: one partition, so "slow" is consumed before the others.
    for payload in ["slow", "a", "b"] {
        producer
            .send(&topic, Some("k"), payload.as_bytes(), &[])
            .await
            .unwrap();
    }

    let first = Arc::new(Gate::default());
    let (shutdown, task) = consume(first.clone());
    eventually("the records behind the slow one", || {
        first.seen.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        sorted(&first),
        ["a", "b"],
        "the slow record is still retrying"
    );
    // Several commit intervals: nothing past the slow record may be committed meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let second = Arc::new(Gate::default());
    second.open.store(true, std::sync::atomic::Ordering::SeqCst);
    let (shutdown, task) = consume(second.clone());
    eventually("the redelivered records", || {
        second.seen.lock().unwrap().len() == 3
    })
    .await;
    assert_eq!(
        sorted(&second),
        ["a", "b", "slow"],
        "the unfinished record and those after it are delivered again"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();

    producer.send(&topic, Some("k"), b"c", &[]).await.unwrap();
    let third = Arc::new(Gate::default());
    let (shutdown, task) = consume(third.clone());
    eventually("the new record", || third.seen.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sorted(&third),
        ["c"],
        "what was finished is not delivered again"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
