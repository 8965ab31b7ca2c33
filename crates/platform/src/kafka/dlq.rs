//! Dead letters: a record no handler could take is written to `<topic>.dlq`, with the
//! Spring Kafka headers that name where it came from and why it failed, so `opsctl dlq`
//! can show and replay it.

use super::handler::Record;
use super::producer::Producer;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Header naming the record's topic of origin on a dead letter (Spring Kafka's name).
pub const DLQ_ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
pub const DLQ_ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
pub const DLQ_ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
pub const DLQ_EXCEPTION_CLASS: &str = "kafka_dlt-exception-fqcn";
pub const DLQ_EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
pub const DLQ_FAILED_AT: &str = "kafka_dlt-failed-at";

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Why a record was given up on: the failure's class and message.
pub(super) struct Failure {
    pub class: String,
    pub message: String,
}

/// Writes `record` to its dead-letter topic, retrying with backoff from
/// `initial_backoff` until the broker takes it; false when interrupted by shutdown.
pub(super) async fn dead_letter(
    producer: &Producer,
    record: &Record,
    failure: &Failure,
    initial_backoff: Duration,
    shutdown: &CancellationToken,
) -> bool {
    let dlq = dlq_topic(&record.topic);
    tracing::error!(error.class = %failure.class, error.message = %failure.message, dlq = %dlq, "record dead-lettered");
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let failed_at = chrono::Utc::now().to_rfc3339();
    let mut headers = carried_headers(record);
    headers.extend([
        (DLQ_ORIGINAL_TOPIC, record.topic.as_str()),
        (DLQ_ORIGINAL_PARTITION, partition.as_str()),
        (DLQ_ORIGINAL_OFFSET, offset.as_str()),
        (DLQ_EXCEPTION_CLASS, failure.class.as_str()),
        (DLQ_EXCEPTION_MESSAGE, failure.message.as_str()),
        (DLQ_FAILED_AT, failed_at.as_str()),
    ]);
    let key = record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok());
    let payload = record.payload.as_deref().unwrap_or_default();
    let mut delay = initial_backoff;
    loop {
        match producer.send(&dlq, key, payload, &headers).await {
            Ok(_) => return true,
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

/// The record's own text headers; the `kafka_dlt-` ones of an earlier failure are
/// dropped, so a dead letter names only its latest.
fn carried_headers(record: &Record) -> Vec<(&str, &str)> {
    record
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with("kafka_dlt-"))
        .filter_map(|(k, v)| {
            Some((
                k.as_str(),
                v.as_deref().and_then(|v| std::str::from_utf8(v).ok())?,
            ))
        })
        .collect()
}
