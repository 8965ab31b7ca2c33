use crate::helpers::{bootstrap, brokers, producer, topics};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

#[tokio::test]
async fn lag_is_the_end_offset_minus_the_committed_offset_per_partition() {
    let topic = platform::testing::unique_name("ops_lag");
    let group = platform::testing::unique_name("ops_group");
    topics(&[&topic], 2).await;
    let producer = producer();
    let mut written = std::collections::BTreeMap::<i32, i64>::new();
    for i in 0..6 {
        let (partition, offset) = producer
            .send(&topic, Some(&format!("key-{i}")), b"{}", &[])
            .await
            .expect("sent");
        let end = written.entry(partition).or_default();
        *end = (*end).max(offset + 1);
    }
    let (&first, &first_end) = written.iter().next().expect("a partition got records");
    let consumer = opsctl::kafka::client(&brokers(), Some(&group)).expect("client");
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(&topic, first, Offset::Offset(1))
        .expect("offset");
    consumer
        .commit(&commit, CommitMode::Sync)
        .expect("committed");

    let lag = opsctl::kafka::group_lag(&brokers(), &group)
        .await
        .expect("lag read");

    assert_eq!(lag.group, group);
    let mine: Vec<_> = lag.partitions.iter().filter(|p| p.topic == topic).collect();
    assert_eq!(
        mine.len(),
        1,
        "only the committed partition is listed: {lag:?}"
    );
    assert_eq!(mine[0].partition, first);
    assert_eq!(mine[0].committed_offset, 1);
    assert_eq!(mine[0].end_offset, first_end);
    assert_eq!(mine[0].lag, first_end - 1);
    assert_eq!(lag.total_lag, first_end - 1);
}

#[tokio::test]
async fn a_group_without_commits_has_no_partitions_and_no_lag() {
    let group = platform::testing::unique_name("ops_nobody");
    let lag = opsctl::kafka::group_lag(&brokers(), &group)
        .await
        .expect("lag read");
    assert!(lag.partitions.is_empty());
    assert_eq!(lag.total_lag, 0);
}

fn opsctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .args(["--kafka-bootstrap-servers", &bootstrap()])
        .args(args)
        .output()
        .expect("opsctl runs")
}

#[tokio::test]
async fn lag_of_all_groups_covers_the_order_and_the_customer_service_groups() {
    let out = opsctl(&["kafka", "lag", "--all", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lags: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let groups: Vec<&str> = lags
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert_eq!(groups, ["order-service-group", "customer-service-group"]);
}

#[tokio::test]
async fn dlq_list_without_a_topic_reads_every_dead_letter_topic_of_the_platform() {
    let out = opsctl(&["dlq", "list", "--num", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for topic in opsctl::dlq::DLQ_TOPICS {
        assert!(text.contains(topic), "{topic} not mentioned: {text}");
    }
}
