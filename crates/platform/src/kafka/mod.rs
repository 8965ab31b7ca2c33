//! Kafka: the idempotent producer, topic creation, and the consumer-group loop with
//! bounded retries, dead-lettering and manual offset commits.
//!
//! - [`client`]: the settings every client of ours starts from.
//! - [`admin`]: topics, and their creation at start-up.
//! - [`producer`]: the producer that stamps each record with the request's ids.
//! - [`handler`]: a consumed record, and what a service's handler makes of it.
//! - [`consumer`]: the consumer-group loop, its offsets and its lag gauge.
//! - [`dlq`]: where a hopeless record goes, and the headers that say why.
//!
//! Every name is also reachable here (`platform::kafka::Producer`), so users need not
//! know which of these modules holds it.

pub mod admin;
pub mod client;
pub mod consumer;
pub mod dlq;
pub mod handler;
pub mod producer;

pub use admin::{ensure_topics, ensure_topics_in_background, TopicSpec};
pub use client::{
    client_config, Brokers, KafkaSecurity, SaslCredentials, SaslMechanism, SecurityProtocol,
};
pub use consumer::{
    consume_until_shutdown, run_consumer, ConsumerMetrics, ConsumerSettings, COMMIT_INTERVAL,
    DEFAULT_TRANSIENT_BUDGET,
};
pub use dlq::{
    dlq_topic, DLQ_EXCEPTION_CLASS, DLQ_EXCEPTION_MESSAGE, DLQ_FAILED_AT, DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_TOPIC,
};
pub use handler::{caused_by_transient_db_error, db_error, decode, Handler, HandlerError, Record};
pub use producer::Producer;
