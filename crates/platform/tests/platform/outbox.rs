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
    fn mark_published(&self, id: uuid::Uuid) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("UPDATE test_outbox SET status='PUBLISHED', published_at=now(), locked_until=NULL WHERE id=$1")
                .bind(id)
                .execute(&self.pool)
                .await
                .map(|_| ())
        })
    }
    fn mark_failed(
        &self,
        id: uuid::Uuid,
        error: String,
        retry_in: Option<Duration>,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE test_outbox SET retry_count = retry_count + 1, error_message = $2, locked_until = NULL,
                 status = CASE WHEN $3::float8 IS NULL THEN 'FAILED' ELSE 'PENDING' END,
                 next_attempt_at = now() + make_interval(secs => COALESCE($3, 0)) WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(retry_in.map(|d| d.as_secs_f64()))
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }
    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT count(*) FILTER (WHERE status='PENDING') AS pending, count(*) FILTER (WHERE status='FAILED') AS failed FROM test_outbox",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(OutboxCounts {
                pending: row.get("pending"),
                failed: row.get("failed"),
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
    let bootstrap = platform::testing::kafka_bootstrap();
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
    assert_eq!(
        relay.refresh_gauges().await.unwrap(),
        OutboxCounts {
            pending: 5,
            failed: 0
        }
    );

    // Two relays (two replicas) racing claim disjoint rows.
    let (a, b) = tokio::join!(relay.run_once(), relay.run_once());
    assert_eq!(a.unwrap() + b.unwrap(), 5);
    assert_eq!(relay.run_once().await.unwrap(), 0);
    assert_eq!(
        relay.refresh_gauges().await.unwrap(),
        OutboxCounts {
            pending: 0,
            failed: 0
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
async fn rows_that_keep_failing_back_off_and_end_failed_and_counted() {
    let store = store_with_rows("unreachable", 1).await;
    let metrics = Metrics::new("platform-test", "test").unwrap();
    // Nothing listens on port 1: every publish fails after the delivery timeout.
    let producer = Producer::new("127.0.0.1:1", Duration::from_millis(300)).unwrap();
    let mut settings = RelaySettings::new("test_outbox");
    settings.max_attempts = 2;
    settings.initial_backoff = Duration::from_millis(50);
    let relay = Relay::new(store.clone(), producer, settings, &metrics).unwrap();
    assert_eq!(relay.run_once().await.unwrap(), 1);
    let row = sqlx::query("SELECT status, retry_count, error_message FROM test_outbox")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("status"), "PENDING");
    assert_eq!(row.get::<i32, _>("retry_count"), 1);
    assert_eq!(relay.run_once().await.unwrap(), 0, "backing off");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(relay.run_once().await.unwrap(), 1);
    assert_eq!(
        relay.refresh_gauges().await.unwrap(),
        OutboxCounts {
            pending: 0,
            failed: 1
        }
    );
    assert_eq!(
        metric_value(
            &metrics.encode(),
            "outbox_failed_rows",
            &[("outbox", "test_outbox")]
        ),
        Some(1.0)
    );
}
