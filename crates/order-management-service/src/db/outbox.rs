//! `payment_completed_outbox`: the events written in the transaction that changes what
//! they tell (PaymentCompleted, OrderReleased; each row carries its topic and event
//! type). The relay publishes them through `platform::outbox::PgOutboxStore`, the SQL
//! every outbox table shares; only the insert, with this service's columns, is here.

use events::EventHeaders;
use platform::outbox::OutboxMessage;
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// Writes an event row keyed by `aggregate_id`, leased for `lease` so the relay loop
/// leaves it to the immediate publish; returns the message to hand to
/// `Relay::publish_now`.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut PgConnection,
    aggregate_id: Uuid,
    event_type: &str,
    topic: &str,
    payload: &serde_json::Value,
    headers: EventHeaders,
    lease: Duration,
) -> Result<OutboxMessage, sqlx::Error> {
    let id = Uuid::new_v4();
    let payload_text = sqlx::query_scalar!(
        r#"INSERT INTO payment_completed_outbox (id, aggregate_id, event_type, payload, topic, headers, locked_until)
           VALUES ($1, $2, $3, $4, $5, $6, (now() AT TIME ZONE 'UTC') + make_interval(secs => $7))
           RETURNING payload::text AS "payload!""#,
        id,
        aggregate_id,
        event_type,
        payload,
        topic,
        headers.to_json(),
        lease.as_secs_f64()
    )
    .fetch_one(conn)
    .await?;
    Ok(OutboxMessage {
        id,
        topic: topic.to_owned(),
        key: aggregate_id.to_string(),
        payload: payload_text.into_bytes(),
        headers: headers.into_vec(),
        attempts: 0,
    })
}
