//! `payment_completed_outbox`: the events written in the transaction that changes what
//! they tell (PaymentCompleted, OrderReleased; each row carries its topic and event
//! type). The relay publishes them through `platform::outbox::PgOutboxStore`, the SQL
//! every outbox table shares; only the insert, with this service's columns, is here
//! (and in [`super::payments::record_approved`], which writes a row in the statement
//! that records the payment).

use events::EventHeaders;
use platform::outbox::OutboxMessage;
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// An event row about to be written.
pub struct NewEvent<'a> {
    pub id: Uuid,
    /// The record key: the order's id.
    pub aggregate_id: Uuid,
    /// The row's `event_type` column.
    pub event_type: &'a str,
    pub topic: &'a str,
    pub payload: serde_json::Value,
    pub headers: EventHeaders,
    /// How long the relay loop leaves the row to the immediate publish.
    pub lease: Duration,
}

impl NewEvent<'_> {
    /// The message to hand to `Relay::publish_now` once the row is committed, with the
    /// payload as the database stored it.
    pub fn into_message(self, stored_payload: String) -> OutboxMessage {
        OutboxMessage {
            id: self.id,
            topic: self.topic.to_owned(),
            key: self.aggregate_id.to_string(),
            payload: stored_payload.into_bytes(),
            headers: self.headers.into_vec(),
            attempts: 0,
        }
    }
}

/// Writes an event row, leased so the relay loop leaves it to the immediate publish;
/// returns the message to hand to `Relay::publish_now`.
pub async fn insert(
    conn: &mut PgConnection,
    event: NewEvent<'_>,
) -> Result<OutboxMessage, sqlx::Error> {
    let stored = sqlx::query_scalar!(
        r#"INSERT INTO payment_completed_outbox (id, aggregate_id, event_type, payload, topic, headers, locked_until)
           VALUES ($1, $2, $3, $4, $5, $6, (now() AT TIME ZONE 'UTC') + make_interval(secs => $7))
           RETURNING payload::text AS "payload!""#,
        event.id,
        event.aggregate_id,
        event.event_type,
        event.payload,
        event.topic,
        event.headers.to_json(),
        event.lease.as_secs_f64()
    )
    .fetch_one(conn)
    .await?;
    Ok(event.into_message(stored))
}
