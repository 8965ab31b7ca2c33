use crate::support::metric_value;
use futures::future::BoxFuture;
use platform::kafka::{ensure_topics, Producer, TopicSpec};
use platform::metrics::Metrics;
use platform::outbox::{OutboxCounts, OutboxMessage, OutboxStore, Relay, RelaySettings};
use rdkafka::message::Message;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use std::time::Duration;

/// An outbox table like the services', driven by runtime SQL.
struct TestStore {
    pool: PgPool,
}

const SCHEMA: &str = "CREATE TABLE test_outbox (
    id UUID PRIMARY KEY, topic TEXT NOT NULL, key TEXT NOT NULL, payload BYTEA NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING', retry_count INT NOT NULL DEFAULT 0,
    error_message TEXT, next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until TIMESTAMPTZ, published_at TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL DEFAULT now())";

impl OutboxStore for TestStore {
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<OutboxMessage>, sqlx::Error>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "UPDATE test_outbox SET locked_until = now() + make_interval(secs => $2)
                 WHERE id IN (SELECT id FROM test_outbox WHERE status = 'PENDING' AND next_attempt_at <= now()
                              AND (locked_until IS NULL OR locked_until < now())
                              ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, topic, key, payload, retry_count",
            )
            .bind(limit)
            .bind(lease.as_secs_f64())
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| OutboxMessage {
                    id: r.get("id"),
                    topic: r.get("topic"),
                    key: r.get("key"),
                    payload: r.get("payload"),
                    headers: vec![("eventType".into(), "TEST".into())],
                    attempts: r.get("retry_count"),
                })
                .collect())
        })
    }
    fn mark_published(&self, ids: Vec<uuid::Uuid>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("UPDATE test_outbox SET status='PUBLISHED', published_at=now(), locked_until=NULL WHERE id = ANY($1)")
                .bind(ids)
                .execute(&self.pool)
                .await
                .map(|_| ())
        })
    }
    fn mark_failed(
        &self,
        id: uuid::Uuid,
        error: String,
        retry_in: Duration,
        give_up_after: Duration,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE test_outbox SET retry_count = retry_count + 1, error_message = $2, locked_until = NULL,
                 status = CASE WHEN created_at < now() - make_interval(secs => $4) THEN 'FAILED' ELSE 'PENDING' END,
                 next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1 AND status = 'PENDING'",
            )
            .bind(id)
            .bind(error)
            .bind(retry_in.as_secs_f64())
            .bind(give_up_after.as_secs_f64())
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }
    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT count(*) FILTER (WHERE status='PENDING') AS pending, count(*) FILTER (WHERE status='FAILED') AS failed,
                        COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status='PENDING')), 0)::int8 AS oldest
                 FROM test_outbox",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(OutboxCounts {
                pending: row.get("pending"),
                failed: row.get("failed"),
                oldest_pending_secs: row.get("oldest"),
            })
        })
    }
    fn purge_published(&self, age: Duration) -> BoxFuture<'_, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM test_outbox WHERE status='PUBLISHED' AND published_at < now() - make_interval(secs => $1)")
                .bind(age.as_secs_f64())
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected())
        })
    }
}

async fn store_with_rows(topic: &str, n: usize) -> Arc<TestStore> {
    let pool = PgPool::connect_with(platform::testing::fresh_database("platform").await.unwrap())
        .await
        .unwrap();
    sqlx::query(SCHEMA).execute(&pool).await.unwrap();
    for i in 0..n {
        sqlx::query("INSERT INTO test_outbox (id, topic, key, payload) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::new_v4())
            .bind(topic)
            .bind(format!("key-{i}"))
            .bind(format!("event-{i}").into_bytes())
            .execute(&pool)
            .await
            .unwrap();
    }
    Arc::new(TestStore { pool })
}

#[tokio::test]
async fn the_relay_publishes_pending_rows_once_and_marks_them_published() {
    let bootstrap = platform::testing::kafka_brokers();
    let topic = platform::testing::unique_name("outbox");
    ensure_topics(&bootstrap, &[TopicSpec::events(&topic)])
        .await
        .unwrap();
    let store = store_with_rows(&topic, 5).await;
    let metrics = Metrics::new("platform-test", "test").unwrap();
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).unwrap();
    let relay = Relay::new(
        store.clone(),
        producer,
        RelaySettings::new("test_outbox"),
        &metrics,
    )
    .unwrap();
    let counts = relay.refresh_gauges().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (5, 0));

    // Two relays (two replicas) racing claim disjoint rows.
    let (a, b) = tokio::join!(relay.run_once(), relay.run_once());
    assert_eq!(a.unwrap() + b.unwrap(), 5);
    assert_eq!(relay.run_once().await.unwrap(), 0);
    assert_eq!(
        relay.refresh_gauges().await.unwrap(),
        OutboxCounts {
            pending: 0,
            failed: 0,
            oldest_pending_secs: 0
        }
    );

    let consumer = platform::testing::reader(&topic).unwrap();
    let mut payloads = Vec::new();
    while payloads.len() < 5 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        payloads.push(String::from_utf8_lossy(message.payload().unwrap()).into_owned());
    }
    payloads.sort();
    assert_eq!(
        payloads,
        (0..5).map(|i| format!("event-{i}")).collect::<Vec<_>>()
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), consumer.recv())
            .await
            .is_err(),
        "no duplicates"
    );
    let text = metrics.encode();
    assert_eq!(
        metric_value(
            &text,
            "outbox_published_total",
            &[("outbox", "test_outbox")]
        ),
        Some(5.0),
        "{text}"
    );
}

#[tokio::test]
async fn failing_rows_back_off_and_end_failed_only_once_older_than_the_max_age() {
    let store = store_with_rows("unreachable", 1).await;
    let metrics = Metrics::new("platform-test", "test").unwrap();
    // Nothing listens on port 1: every publish fails after the delivery timeout.
    let producer = Producer::new(
        &platform::kafka::Brokers::plaintext("127.0.0.1:1"),
        Duration::from_millis(300),
    )
    .unwrap();
    let mut settings = RelaySettings::new("test_outbox");
    // Each failed publish takes about a second (librdkafka's timeout granularity).
    settings.max_age = Duration::from_secs(10);
    settings.initial_backoff = Duration::from_millis(50);
    settings.max_backoff = Duration::from_millis(100);
    let relay = Relay::new(store.clone(), producer, settings, &metrics).unwrap();
    let state = || async {
        let row = sqlx::query("SELECT status, retry_count FROM test_outbox")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        (
            row.get::<String, _>("status"),
            row.get::<i32, _>("retry_count"),
        )
    };
    // Several failures while the row is young: it stays PENDING, however many.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state().await.1 < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three attempts");
        relay.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, attempts) = state().await;
    assert_eq!(status, "PENDING", "after {attempts} failures");
    let counts = relay.refresh_gauges().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (1, 0));
    // Past the max age, the next failure gives up.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state().await.0 == "PENDING" {
        assert!(tokio::time::Instant::now() < deadline, "gave up");
        relay.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state().await.0, "FAILED");
    let counts = relay.refresh_gauges().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 1));
    assert_eq!(
        metric_value(
            &metrics.encode(),
            "outbox_failed_rows",
            &[("outbox", "test_outbox")]
        ),
        Some(1.0)
    );
}
