//! Consumer-group lag: per partition the group's committed offset, the end offset (high
//! watermark) and the difference, which is what `rpk group describe` shows.
//!
//! A [`BaseConsumer`] with the group's id is used read-only: it never subscribes, so it
//! never joins the group, and it never commits. The broker used for development (nisshi)
//! does not return member lists when a group is described; members are then shown as
//! `n/a`.

use crate::cli::{GroupCommand, KafkaCommand, Settings};
use crate::output::{self, Output};
use crate::Outcome;
use anyhow::Context as _;
use platform::kafka::Brokers;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::time::Duration;

/// The platform's consumer groups (`kafka lag --all`): the order service's, on
/// `orders.created` and `payments.completed`, and the customer-facing service's, on
/// `orders.released` (ADR 0007).
pub const GROUPS: [&str; 2] = [events::ORDER_SERVICE_GROUP, events::CUSTOMER_SERVICE_GROUP];

/// How long one broker request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One partition of a group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    pub end_offset: i64,
    pub lag: i64,
}

/// A member of a group, when the broker reports members.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

/// A group's offsets and lag.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLag {
    pub group: String,
    /// The group's state as the broker reports it, when it does.
    pub state: Option<String>,
    /// Members, or `None` when the broker does not report them.
    pub members: Option<Vec<Member>>,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: i64,
}

/// A read-only consumer client, on the services' client settings; `group` set when
/// offsets of a group are read.
pub fn client(brokers: &Brokers, group: Option<&str>) -> anyhow::Result<BaseConsumer> {
    let mut config = platform::kafka::client_config(brokers);
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    if let Some(group) = group {
        config.set("group.id", group);
    }
    config.create().context("cannot create a Kafka client")
}

/// Reads the lag of `group` on every topic where it has a committed offset.
pub async fn group_lag(brokers: &Brokers, group: &str) -> anyhow::Result<GroupLag> {
    let brokers = brokers.clone();
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || group_lag_blocking(&brokers, &group)).await?
}

fn group_lag_blocking(brokers: &Brokers, group: &str) -> anyhow::Result<GroupLag> {
    let consumer = client(brokers, Some(group))?;
    let metadata = consumer.fetch_metadata(None, TIMEOUT).with_context(|| {
        format!(
            "cannot read topic metadata from the broker at {}",
            brokers.servers
        )
    })?;
    let mut all = TopicPartitionList::new();
    for topic in metadata.topics() {
        if topic.name().starts_with("__") {
            continue;
        }
        for partition in topic.partitions() {
            all.add_partition(topic.name(), partition.id());
        }
    }
    let committed = if all.count() == 0 {
        all
    } else {
        consumer
            .committed_offsets(all, TIMEOUT)
            .with_context(|| format!("cannot read the committed offsets of group {group}"))?
    };
    let mut partitions = Vec::new();
    for element in committed.elements() {
        let Offset::Offset(committed_offset) = element.offset() else {
            continue;
        };
        let (_, end_offset) = consumer
            .fetch_watermarks(element.topic(), element.partition(), TIMEOUT)
            .with_context(|| {
                format!(
                    "cannot read the end offset of {}/{}",
                    element.topic(),
                    element.partition()
                )
            })?;
        partitions.push(PartitionLag {
            topic: element.topic().to_owned(),
            partition: element.partition(),
            committed_offset,
            end_offset,
            lag: (end_offset - committed_offset).max(0),
        });
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let (state, members) = match consumer.fetch_group_list(Some(group), TIMEOUT) {
        Ok(list) => match list.groups().iter().find(|g| g.name() == group) {
            Some(info) => {
                let members: Vec<Member> = info
                    .members()
                    .iter()
                    .map(|m| Member {
                        member_id: m.id().to_owned(),
                        client_id: m.client_id().to_owned(),
                        host: m.client_host().to_owned(),
                    })
                    .collect();
                let state = Some(info.state().to_owned()).filter(|s| !s.is_empty());
                (state, Some(members).filter(|m| !m.is_empty()))
            }
            None => (None, None),
        },
        Err(_) => (None, None),
    };
    Ok(GroupLag {
        group: group.to_owned(),
        state,
        members,
        total_lag: partitions.iter().map(|p| p.lag).sum(),
        partitions,
    })
}

/// Runs `opsctl kafka ...`.
pub async fn run(
    settings: &Settings,
    command: KafkaCommand,
    out: &Output,
) -> anyhow::Result<Outcome> {
    let brokers = &settings.kafka.brokers().map_err(anyhow::Error::msg)?;
    let (groups, describe, all) = match command {
        KafkaCommand::Lag { all: true, .. } => (GROUPS.map(str::to_owned).to_vec(), false, true),
        KafkaCommand::Lag { group, all: false } => (vec![group], false, false),
        KafkaCommand::Group {
            command: GroupCommand::Describe { group },
        } => (vec![group], true, false),
    };
    let mut lags = Vec::new();
    for group in &groups {
        lags.push(group_lag(brokers, group).await?);
    }
    if out.json() {
        // One object for one group (as before --all existed), an array for --all.
        match lags.as_slice() {
            [lag] if !all => out.print_json(lag)?,
            _ => out.print_json(&lags)?,
        }
        return Ok(Outcome::Ok);
    }
    for (i, lag) in lags.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_lag(lag, describe, out);
    }
    Ok(Outcome::Ok)
}

fn print_lag(lag: &GroupLag, describe: bool, out: &Output) {
    if describe {
        let members = match &lag.members {
            Some(members) => members.len().to_string(),
            None => "n/a (the broker does not report members)".to_owned(),
        };
        println!("GROUP        {}", lag.group);
        println!("STATE        {}", output::opt(lag.state.as_deref()));
        println!("MEMBERS      {members}");
        println!("TOTAL-LAG    {}", lag.total_lag);
        if let Some(members) = &lag.members {
            let rows = members
                .iter()
                .map(|m| vec![m.member_id.clone(), m.client_id.clone(), m.host.clone()])
                .collect();
            out.print_table(&["MEMBER-ID", "CLIENT-ID", "HOST"], rows);
        }
        println!();
    }
    if lag.partitions.is_empty() {
        println!("group {} has no committed offsets", lag.group);
        return;
    }
    let rows = lag
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.committed_offset.to_string(),
                p.end_offset.to_string(),
                p.lag.to_string(),
            ]
        })
        .collect();
    out.print_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
        ],
        rows,
    );
    if !describe {
        println!("group {}: total lag {}", lag.group, lag.total_lag);
    }
}
