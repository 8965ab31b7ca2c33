//! Topics: what each is created with, and their creation at start-up, which leaves
//! topics that exist as they are.

use super::client::{client_config, Brokers};
use super::dlq::dlq_topic;
use crate::config::KafkaSettings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A topic and the settings it is created with.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub retention_ms: u64,
    /// 1 unless the deployment says otherwise ([`KafkaSettings::replicated`]).
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

// Here rather than next to the settings: the settings are read before anything else
// and know nothing of what they configure.
impl KafkaSettings {
    /// `topics` as this deployment creates them: with its replication.
    pub fn replicated(&self, topics: impl IntoIterator<Item = TopicSpec>) -> Vec<TopicSpec> {
        topics
            .into_iter()
            .map(|mut t| {
                t.replication_factor = self.replication_factor;
                t.min_insync_replicas = self.min_insync_replicas;
                t
            })
            .collect()
    }
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(brokers: &Brokers, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
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
    brokers: Brokers,
    topics: Vec<TopicSpec>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match ensure_topics(&brokers, &topics).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_take_the_deployments_replication() {
        let settings = KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            create_topics: true,
            replication_factor: 3,
            min_insync_replicas: Some(2),
            security_protocol: Default::default(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
        };
        let topics = settings.replicated(TopicSpec::with_dlq("orders.created"));
        assert_eq!(topics.len(), 2);
        assert!(topics
            .iter()
            .all(|t| t.replication_factor == 3 && t.min_insync_replicas == Some(2)));
        assert_eq!(topics[1].name, "orders.created.dlq");
    }
}
