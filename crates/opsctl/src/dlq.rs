//! Dead-letter topics: reading them, and replaying their records to the topics they
//! came from.
//!
//! A dead letter carries the headers the platform's consumers write
//! ([`platform::kafka::DLQ_ORIGINAL_TOPIC`] and the other `kafka_dlt-*` headers).
//! Replay re-publishes each record unchanged (payload, key, and its headers minus the
//! `kafka_dlt-*` ones) to the topic named in `kafka_dlt-original-topic`.
//!
//! Exactly once per record: progress is kept as committed offsets of the consumer group
//! [`REPLAY_GROUP`], committed after each successful re-publish. Per partition the
//! committed offset is the first record not yet replayed. A record replayed beyond it
//! (because a `--filter` skipped an earlier one, which stays eligible for later runs) is
//! also written to the replay log topic [`REPLAY_LOG_TOPIC`], keyed
//! `<group>:<dlq>:<partition>:<offset>`: commit metadata would be the natural place,
//! but the development broker (nisshi) does not keep it. A later run replays neither a
//! record before the committed offset nor one in the log.

pub use crate::cli::{Filter, REPLAY_GROUP};

use crate::cli::{DlqCommand, ReplayArgs, Settings};
use crate::kafka::{client, TIMEOUT};
use crate::output::{self, Output};
use crate::Outcome;
use anyhow::Context as _;
use platform::kafka::Brokers;
use platform::kafka::{
    Producer, DLQ_EXCEPTION_CLASS, DLQ_EXCEPTION_MESSAGE, DLQ_FAILED_AT, DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_TOPIC,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The platform's dead-letter topics (`dlq list` without a topic reads them all):
/// those of `orders.created` and `payments.completed`, and of `orders.released`
/// (ADR 0007).
pub const DLQ_TOPICS: [&str; 3] = [
    "orders.created.dlq",
    "payments.completed.dlq",
    "orders.released.dlq",
];

/// Prefix of the headers a dead-lettering consumer adds; not re-published.
pub const DLT_HEADER_PREFIX: &str = "kafka_dlt-";
/// Where replays made out of order are recorded (see the module documentation).
pub const REPLAY_LOG_TOPIC: &str = "opsctl.dlq-replayed";
/// The group id of read-only clients; it never joins a group nor commits.
const BROWSE_GROUP: &str = "opsctl-browse";

/// One header of a record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<String>,
}

/// A record of a dead-letter topic, with where it came from and why it failed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch, when the broker gave one.
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    pub payload: Option<String>,
    pub headers: Vec<Header>,
    pub original_topic: Option<String>,
    pub original_partition: Option<i32>,
    pub original_offset: Option<i64>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub failed_at: Option<String>,
}

impl DeadLetter {
    fn from_message<M: Message>(message: &M) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let headers: Vec<Header> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| Header {
                        key: h.key.to_owned(),
                        value: h.value.map(text),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key.eq_ignore_ascii_case(name))
                .and_then(|h| h.value.clone())
        };
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message.key().map(text),
            payload: message.payload().map(text),
            original_topic: header(DLQ_ORIGINAL_TOPIC),
            original_partition: header(DLQ_ORIGINAL_PARTITION).and_then(|v| v.parse().ok()),
            original_offset: header(DLQ_ORIGINAL_OFFSET).and_then(|v| v.parse().ok()),
            error_class: header(DLQ_EXCEPTION_CLASS),
            error_message: header(DLQ_EXCEPTION_MESSAGE),
            failed_at: header(DLQ_FAILED_AT),
            headers,
        }
    }

    /// The headers to re-publish with: all but the `kafka_dlt-*` ones.
    pub fn replay_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter(|h| !h.key.starts_with(DLT_HEADER_PREFIX))
            .filter_map(|h| Some((h.key.as_str(), h.value.as_deref()?)))
            .collect()
    }
}

impl Filter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &DeadLetter) -> bool {
        match self {
            Self::Key(key) => record.key.as_deref() == Some(key.as_str()),
            Self::Error(needle) => [&record.error_class, &record.error_message]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| v.contains(needle.as_str()))),
            Self::OriginalOffset(offset) => record.original_offset == Some(*offset),
        }
    }
}

/// Partitions of `topic` with their low and high watermarks.
fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<(i32, i64, i64)>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        anyhow::bail!("topic {topic} does not exist");
    };
    if let Some(error) = meta.error() {
        let code = rdkafka::types::RDKafkaErrorCode::from(error);
        // One wording for a missing topic whichever way the broker says it, so that
        // `dlq list` over every DLQ can tell "not created yet" from a real failure.
        anyhow::ensure!(
            code != rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            "topic {topic} does not exist"
        );
        anyhow::bail!("topic {topic}: {code}");
    }
    anyhow::ensure!(
        !meta.partitions().is_empty(),
        "topic {topic} does not exist"
    );
    let mut out = Vec::new();
    for p in meta.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), TIMEOUT)
            .with_context(|| format!("cannot read the offsets of {topic}/{}", p.id()))?;
        out.push((p.id(), low, high));
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads the records of `topic` from `starts` (partition, first offset, high watermark)
/// up to the high watermarks, at most `limit` of them.
fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    starts: &[(i32, i64, i64)],
    limit: Option<usize>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut assignment = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    for &(partition, start, high) in starts {
        if start < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            remaining.insert(partition, high);
        }
    }
    if remaining.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let mut records = Vec::new();
    let mut last_progress = Instant::now();
    let mut last_error = None;
    while !remaining.is_empty() && limit.is_none_or(|l| records.len() < l) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                last_progress = Instant::now();
                let partition = message.partition();
                if let Some(&high) = remaining.get(&partition) {
                    if message.offset() < high {
                        records.push(DeadLetter::from_message(&message));
                    }
                    if message.offset() + 1 >= high {
                        remaining.remove(&partition);
                    }
                }
            }
            Some(Err(e)) => last_error = Some(e),
            None => {}
        }
        if last_progress.elapsed() > TIMEOUT {
            let why = last_error.map(|e| format!(": {e}")).unwrap_or_default();
            anyhow::bail!("timed out reading {topic}{why}");
        }
    }
    // Nothing was committed, so a failing unassign leaves nothing behind.
    let _ = consumer.unassign();
    records.sort_by_key(|r| (r.partition, r.offset));
    if let Some(limit) = limit {
        records.truncate(limit);
    }
    Ok(records)
}

/// The first `num` records of a dead-letter topic, oldest first.
pub async fn read(brokers: &Brokers, topic: &str, num: usize) -> anyhow::Result<Vec<DeadLetter>> {
    let brokers = brokers.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer = client(&brokers, Some(BROWSE_GROUP))?;
        let starts = partitions(&consumer, &topic)?;
        read_range(&consumer, &topic, &starts, Some(num))
    })
    .await?
}

/// What replay did, or would do, with a record.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Replayed,
    WouldReplay,
    SkippedByFilter,
    Failed,
}

/// One record of a replay.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub original_topic: Option<String>,
    pub action: Action,
    /// Where it was written (`topic/partition@offset`) or why it failed.
    pub detail: Option<String>,
}

/// The outcome of a replay.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    pub topic: String,
    pub dry_run: bool,
    pub replayed: usize,
    pub would_replay: usize,
    pub skipped_by_filter: usize,
    pub failed: usize,
    /// Records after the group's offset that an earlier run already replayed.
    pub already_replayed: usize,
    pub records: Vec<ReplayedRecord>,
}

/// Per partition: the first offset not replayed yet, and replayed offsets after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cursor {
    next: i64,
    done: BTreeSet<i64>,
}

impl Cursor {
    fn from_commit(offset: Offset, low: i64, logged: &BTreeSet<i64>) -> Self {
        let next = match offset {
            Offset::Offset(n) => n.max(low),
            _ => low,
        };
        let done = logged.iter().copied().filter(|n| *n >= next).collect();
        Self { next, done }
    }

    /// Moves `next` to the first offset of `pending` (offsets read, in order) that is
    /// not done, or to `end` when all are.
    fn advance(&mut self, pending: &[i64], end: i64) {
        self.next = pending
            .iter()
            .copied()
            .find(|o| *o >= self.next && !self.done.contains(o))
            .unwrap_or(end);
        let next = self.next;
        self.done.retain(|o| *o >= next);
    }
}

fn commit(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    cursor: &Cursor,
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    let mut element = tpl.add_partition(topic, partition);
    element.set_offset(Offset::Offset(cursor.next))?;
    consumer
        .commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("cannot commit the replay progress of {topic}/{partition}"))
}

/// The log key of a record replayed out of order.
fn log_key(group: &str, topic: &str, partition: i32, offset: i64) -> String {
    format!("{group}:{topic}:{partition}:{offset}")
}

/// Offsets of `topic` that `group` replayed out of order, per partition.
fn read_replay_log(
    consumer: &BaseConsumer,
    group: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, BTreeSet<i64>>> {
    let exists = consumer
        .fetch_metadata(Some(REPLAY_LOG_TOPIC), TIMEOUT)
        .map(|m| {
            m.topics().iter().any(|t| {
                t.name() == REPLAY_LOG_TOPIC && t.error().is_none() && !t.partitions().is_empty()
            })
        })
        .unwrap_or(false);
    let mut logged: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    if !exists {
        return Ok(logged);
    }
    let starts = partitions(consumer, REPLAY_LOG_TOPIC)?;
    let prefix = format!("{group}:{topic}:");
    for entry in read_range(consumer, REPLAY_LOG_TOPIC, &starts, None)? {
        let Some(rest) = entry.key.as_deref().and_then(|k| k.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some((partition, offset)) = rest.split_once(':') {
            if let (Ok(partition), Ok(offset)) = (partition.parse(), offset.parse()) {
                logged.entry(partition).or_default().insert(offset);
            }
        }
    }
    Ok(logged)
}

/// Replays the dead letters of `args.topic` that were not replayed before.
pub async fn replay(
    brokers: &Brokers,
    args: &ReplayArgs,
    out: &Output,
) -> anyhow::Result<ReplaySummary> {
    let consumer = Arc::new(client(brokers, Some(&args.group))?);
    let pending = read_pending(consumer.clone(), args).await?;
    let producer = Producer::new(brokers, Duration::from_secs(30))
        .context("cannot create the Kafka producer")?;
    let mut read_offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &pending.records {
        read_offsets.entry(r.partition).or_default().push(r.offset);
    }
    let mut replayer = Replayer {
        brokers,
        args,
        consumer,
        producer,
        cursors: pending.cursors,
        ends: pending.ends,
        read_offsets,
        log_ready: false,
    };
    let mut summary = ReplaySummary {
        topic: args.topic.clone(),
        dry_run: args.dry_run,
        ..ReplaySummary::default()
    };
    let bar = out.progress(pending.records.len() as u64, "replaying");
    for record in &pending.records {
        bar.inc(1);
        replayer.replay_record(record, &mut summary).await?;
    }
    bar.finish_and_clear();
    replayer.producer.flush(Duration::from_secs(5));
    Ok(summary)
}

/// The records of a replay's topic from where the group left off, with the cursor and
/// end offset of each partition.
struct Pending {
    records: Vec<DeadLetter>,
    cursors: BTreeMap<i32, Cursor>,
    ends: BTreeMap<i32, i64>,
}

/// Reads the group's committed offsets and replay log, then the records from there on.
async fn read_pending(consumer: Arc<BaseConsumer>, args: &ReplayArgs) -> anyhow::Result<Pending> {
    let topic = args.topic.clone();
    let group = args.group.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let parts = partitions(&consumer, &topic)?;
        let mut tpl = TopicPartitionList::new();
        for (partition, _, _) in &parts {
            tpl.add_partition(&topic, *partition);
        }
        let committed = consumer
            .committed_offsets(tpl, TIMEOUT)
            .context("cannot read the replay group's committed offsets")?;
        let logged = read_replay_log(&consumer, &group, &topic)?;
        let mut cursors = BTreeMap::new();
        let mut starts = Vec::new();
        let mut ends = BTreeMap::new();
        for &(partition, low, high) in &parts {
            let offset = committed
                .find_partition(&topic, partition)
                .map_or(Offset::Invalid, |e| e.offset());
            let cursor = Cursor::from_commit(
                offset,
                low,
                logged.get(&partition).unwrap_or(&BTreeSet::new()),
            );
            starts.push((partition, cursor.next, high));
            cursors.insert(partition, cursor);
            ends.insert(partition, high);
        }
        let records = read_range(&consumer, &topic, &starts, None)?;
        Ok(Pending {
            records,
            cursors,
            ends,
        })
    })
    .await?
}

/// Where a dead letter goes back to, or why it cannot.
fn replay_target<'r>(record: &'r DeadLetter, dlq: &str) -> Result<&'r str, String> {
    match record.original_topic.as_deref() {
        Some(t) if t != dlq => Ok(t),
        Some(_) => Err("the record names its own DLQ as original topic".into()),
        None => Err(format!("no {DLQ_ORIGINAL_TOPIC} header")),
    }
}

/// One replay run: what it publishes with, and how far each partition has got.
struct Replayer<'a> {
    brokers: &'a Brokers,
    args: &'a ReplayArgs,
    consumer: Arc<BaseConsumer>,
    producer: Producer,
    cursors: BTreeMap<i32, Cursor>,
    ends: BTreeMap<i32, i64>,
    /// Per partition, the offsets read, in order.
    read_offsets: BTreeMap<i32, Vec<i64>>,
    /// Whether the replay log topic is known to exist.
    log_ready: bool,
}

impl Replayer<'_> {
    /// Replays (or, dry, describes) one record and adds it to `summary`.
    async fn replay_record(
        &mut self,
        record: &DeadLetter,
        summary: &mut ReplaySummary,
    ) -> anyhow::Result<()> {
        let Some(cursor) = self.cursors.get(&record.partition) else {
            return Ok(());
        };
        // Below the cursor means replayed earlier: the cursor only passes replayed records.
        if record.offset < cursor.next || cursor.done.contains(&record.offset) {
            summary.already_replayed += 1;
            return Ok(());
        }
        let (action, detail) = if !self.args.filter.iter().all(|f| f.matches(record)) {
            (Action::SkippedByFilter, None)
        } else {
            match replay_target(record, &self.args.topic) {
                Err(why) => (Action::Failed, Some(why)),
                Ok(target) if self.args.dry_run => (Action::WouldReplay, Some(target.to_owned())),
                Ok(target) => match self.publish(record, target).await? {
                    Ok(written) => (Action::Replayed, Some(written)),
                    Err(why) => (Action::Failed, Some(why)),
                },
            }
        };
        match action {
            Action::Replayed => summary.replayed += 1,
            Action::WouldReplay => summary.would_replay += 1,
            Action::SkippedByFilter => summary.skipped_by_filter += 1,
            Action::Failed => summary.failed += 1,
        }
        summary.records.push(ReplayedRecord {
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            original_topic: record.original_topic.clone(),
            action,
            detail,
        });
        Ok(())
    }

    /// Re-publishes `record` to `target`, then records the progress: the cursor moves,
    /// a replay ahead of a waiting record goes to the log, and the group commits.
    /// Returns where it was written, or why the broker refused it; an error when the
    /// progress could not be recorded.
    async fn publish(
        &mut self,
        record: &DeadLetter,
        target: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let payload = record.payload.as_deref().unwrap_or_default().as_bytes();
        let sent = self
            .producer
            .send(
                target,
                record.key.as_deref(),
                payload,
                &record.replay_headers(),
            )
            .await;
        let (partition, offset) = match sent {
            Ok(written) => written,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let written = format!("{target}/{partition}@{offset}");
        let Some(cursor) = self.cursors.get_mut(&record.partition) else {
            return Ok(Ok(written));
        };
        cursor.done.insert(record.offset);
        let pending = self
            .read_offsets
            .get(&record.partition)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let end = self
            .ends
            .get(&record.partition)
            .copied()
            .unwrap_or(record.offset + 1);
        cursor.advance(pending, end);
        let cursor = cursor.clone();
        if cursor.next <= record.offset {
            // Replayed ahead of a record still waiting: the offset cannot say so.
            self.log_out_of_order(record, &written).await?;
        }
        let (consumer, topic, p) = (
            self.consumer.clone(),
            self.args.topic.clone(),
            record.partition,
        );
        tokio::task::spawn_blocking(move || commit(&consumer, &topic, p, &cursor)).await??;
        Ok(Ok(written))
    }

    /// Writes a record replayed out of order to the replay log, creating the log topic
    /// on first use.
    async fn log_out_of_order(&mut self, record: &DeadLetter, written: &str) -> anyhow::Result<()> {
        if !self.log_ready {
            platform::kafka::ensure_topics(
                self.brokers,
                &[platform::kafka::TopicSpec::dead_letters(REPLAY_LOG_TOPIC)],
            )
            .await
            .context("cannot create the replay log topic")?;
            self.log_ready = true;
        }
        let key = log_key(
            &self.args.group,
            &self.args.topic,
            record.partition,
            record.offset,
        );
        let entry = serde_json::json!({
            "replayedTo": written,
            "replayedAt": chrono::Utc::now().to_rfc3339(),
        });
        self.producer
            .send(
                REPLAY_LOG_TOPIC,
                Some(&key),
                entry.to_string().as_bytes(),
                &[],
            )
            .await
            .context("cannot record the replay in the replay log")?;
        Ok(())
    }
}

/// Runs `opsctl dlq ...`.
pub async fn run(
    settings: &Settings,
    command: DlqCommand,
    out: &Output,
) -> anyhow::Result<Outcome> {
    let brokers = &settings.kafka.brokers().map_err(anyhow::Error::msg)?;
    match command {
        DlqCommand::List {
            topic: Some(topic),
            num,
        } => {
            let records = read(brokers, &topic, num).await?;
            if out.json() {
                out.print_json(&records)?;
            } else {
                print_list(&topic, &records, out);
            }
        }
        DlqCommand::List { topic: None, num } => {
            // Every DLQ of the platform; one that does not exist yet (a service that
            // never started creates none) is said so, not an error.
            let mut all = Vec::new();
            for topic in DLQ_TOPICS {
                match read(brokers, topic, num).await {
                    Ok(records) if out.json() => all.extend(records),
                    Ok(records) => print_list(topic, &records, out),
                    Err(e) if e.to_string().ends_with("does not exist") => {
                        if out.json() {
                            eprintln!("{e}");
                        } else {
                            println!("{e}");
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if out.json() {
                out.print_json(&all)?;
            }
        }
        DlqCommand::Show { topic, num } => {
            let records = read(brokers, &topic, num).await?;
            if out.json() {
                out.print_json(&records)?;
            } else {
                print_show(&topic, &records);
            }
        }
        DlqCommand::Replay(args) => {
            let summary = replay(brokers, &args, out).await?;
            if out.json() {
                out.print_json(&summary)?;
            } else {
                print_replay(&summary, out);
            }
            anyhow::ensure!(
                summary.failed == 0,
                "{} of the records of {} could not be replayed (run again to retry them)",
                summary.failed,
                summary.topic
            );
        }
    }
    Ok(Outcome::Ok)
}

fn print_list(topic: &str, records: &[DeadLetter], out: &Output) {
    if records.is_empty() {
        println!("{topic} has no records");
        return;
    }
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.partition.to_string(),
                r.offset.to_string(),
                output::opt(r.key.as_deref()),
                format!(
                    "{}/{}@{}",
                    output::opt(r.original_topic.as_deref()),
                    output::opt(r.original_partition),
                    output::opt(r.original_offset)
                ),
                output::opt(r.error_class.as_deref()),
                output::truncate(r.error_message.as_deref().unwrap_or("-"), 80),
            ]
        })
        .collect();
    out.print_table(
        &[
            "PARTITION",
            "OFFSET",
            "KEY",
            "ORIGINAL",
            "ERROR CLASS",
            "MESSAGE",
        ],
        rows,
    );
    println!("{} record(s) of {topic}", records.len());
}

fn print_show(topic: &str, records: &[DeadLetter]) {
    if records.is_empty() {
        println!("{topic} has no records");
        return;
    }
    for r in records {
        println!("─── {}/{}@{}", r.topic, r.partition, r.offset);
        println!("key:       {}", output::opt(r.key.as_deref()));
        if let Some(ts) = r
            .timestamp
            .and_then(chrono::DateTime::from_timestamp_millis)
        {
            println!("timestamp: {}", ts.to_rfc3339());
        }
        println!("headers:");
        for h in &r.headers {
            println!("  {}: {}", h.key, output::opt(h.value.as_deref()));
        }
        println!("payload:");
        let payload = r.payload.as_deref().unwrap_or("");
        let pretty = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| payload.to_owned());
        println!("{pretty}");
    }
}

fn print_replay(summary: &ReplaySummary, out: &Output) {
    if !summary.records.is_empty() {
        let rows = summary
            .records
            .iter()
            .map(|r| {
                vec![
                    r.partition.to_string(),
                    r.offset.to_string(),
                    output::opt(r.key.as_deref()),
                    output::opt(r.original_topic.as_deref()),
                    serde_json::to_value(r.action)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    output::truncate(r.detail.as_deref().unwrap_or("-"), 80),
                ]
            })
            .collect();
        out.print_table(
            &["PARTITION", "OFFSET", "KEY", "TO", "ACTION", "DETAIL"],
            rows,
        );
    }
    if summary.dry_run {
        println!(
            "dry run of {}: would replay {}, skipped by filter {}, failed {}, already replayed {}",
            summary.topic,
            summary.would_replay,
            summary.skipped_by_filter,
            summary.failed,
            summary.already_replayed
        );
    } else {
        println!(
            "{}: replayed {}, skipped by filter {}, failed {}, already replayed {}",
            summary.topic,
            summary.replayed,
            summary.skipped_by_filter,
            summary.failed,
            summary.already_replayed
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_known_dead_letter_topics_are_those_of_the_event_topics() {
        let expected: Vec<String> = [
            events::ORDERS_CREATED_TOPIC,
            events::PAYMENTS_COMPLETED_TOPIC,
            events::ORDERS_RELEASED_TOPIC,
        ]
        .iter()
        .map(|t| platform::kafka::dlq_topic(t))
        .collect();
        assert_eq!(DLQ_TOPICS.to_vec(), expected);
    }

    use super::*;

    #[test]
    fn filters_parse_and_refuse_unknown_names() {
        assert_eq!(Filter::parse("key=abc"), Ok(Filter::Key("abc".into())));
        assert_eq!(
            Filter::parse("error=Poison"),
            Ok(Filter::Error("Poison".into()))
        );
        assert_eq!(
            Filter::parse("original-offset=7"),
            Ok(Filter::OriginalOffset(7))
        );
        assert!(Filter::parse("partition=1").is_err());
        assert!(Filter::parse("original-offset=x").is_err());
        assert!(Filter::parse("key").is_err());
    }

    #[test]
    fn a_cursor_skips_past_replayed_records_and_stops_at_a_skipped_one() {
        let mut cursor = Cursor::from_commit(Offset::Invalid, 0, &BTreeSet::new());
        let read = [0, 1, 2, 3];
        cursor.done.insert(0);
        cursor.advance(&read, 4);
        assert_eq!(cursor.next, 1);
        cursor.done.insert(2);
        cursor.advance(&read, 4);
        assert_eq!(cursor.next, 1);
        let restored = Cursor::from_commit(Offset::Offset(1), 0, &BTreeSet::from([0, 2]));
        assert_eq!(restored, cursor);
        cursor.done.insert(1);
        cursor.done.insert(3);
        cursor.advance(&read, 4);
        assert_eq!(cursor.next, 4);
        assert!(cursor.done.is_empty());
    }
}
