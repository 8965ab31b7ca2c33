use crate::helpers::{bootstrap, brokers, producer, topics};
use opsctl::cli::ReplayArgs;
use opsctl::dlq::{self, Filter};
use opsctl::output::Output;
use platform::kafka::{
    DLQ_EXCEPTION_CLASS, DLQ_EXCEPTION_MESSAGE, DLQ_ORIGINAL_OFFSET, DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
};

/// An original topic and its DLQ holding three dead letters (keys k1, k2, k3).
async fn dead_letters() -> (String, String) {
    let original = platform::testing::unique_name("ops_orders");
    let dlq = format!("{original}.dlq");
    topics(&[&original, &dlq], 1).await;
    let producer = producer();
    for (i, (key, class)) in [("k1", "PoisonA"), ("k2", "PoisonB"), ("k3", "PoisonA")]
        .into_iter()
        .enumerate()
    {
        let offset = (10 + i).to_string();
        let event_id = format!("event-{key}");
        let message = format!("{class}: bad record {key}");
        producer
            .send(
                &dlq,
                Some(key),
                format!("{{\"orderId\":\"{key}\"}}").as_bytes(),
                &[
                    ("eventId", event_id.as_str()),
                    (DLQ_ORIGINAL_TOPIC, original.as_str()),
                    (DLQ_ORIGINAL_PARTITION, "0"),
                    (DLQ_ORIGINAL_OFFSET, offset.as_str()),
                    (DLQ_EXCEPTION_CLASS, class),
                    (DLQ_EXCEPTION_MESSAGE, message.as_str()),
                ],
            )
            .await
            .expect("dead letter written");
    }
    (original, dlq)
}

fn args(dlq: &str, group: &str, filter: Vec<Filter>, dry_run: bool) -> ReplayArgs {
    ReplayArgs {
        topic: dlq.to_owned(),
        dry_run,
        filter,
        group: group.to_owned(),
    }
}

#[tokio::test]
async fn list_and_show_read_where_each_dead_letter_came_from_and_why() {
    let (original, dlq) = dead_letters().await;
    let records = dlq::read(&brokers(), &dlq, 10).await.expect("read");
    assert_eq!(records.len(), 3);
    let first = &records[0];
    assert_eq!(first.key.as_deref(), Some("k1"));
    assert_eq!(first.original_topic.as_deref(), Some(original.as_str()));
    assert_eq!(first.original_partition, Some(0));
    assert_eq!(first.original_offset, Some(10));
    assert_eq!(first.error_class.as_deref(), Some("PoisonA"));
    assert_eq!(
        first.error_message.as_deref(),
        Some("PoisonA: bad record k1")
    );
    assert_eq!(first.payload.as_deref(), Some("{\"orderId\":\"k1\"}"));
    assert_eq!(dlq::read(&brokers(), &dlq, 2).await.expect("read").len(), 2);
}

#[tokio::test]
async fn a_missing_topic_is_a_readable_error() {
    let missing = platform::testing::unique_name("ops_missing");
    let err = dlq::read(&brokers(), &missing, 5).await.unwrap_err();
    assert!(format!("{err:#}").contains(&missing), "{err:#}");
}

#[tokio::test]
async fn replay_publishes_each_dead_letter_exactly_once_with_filters_and_dry_run() {
    let (original, dlq) = dead_letters().await;
    let group = platform::testing::unique_name("ops_replay");
    let out = Output::new(true);

    let dry = dlq::replay(&brokers(), &args(&dlq, &group, vec![], true), &out)
        .await
        .expect("dry run");
    assert_eq!((dry.would_replay, dry.replayed), (3, 0));
    assert!(dlq::read(&brokers(), &original, 10)
        .await
        .expect("read")
        .is_empty());

    let filtered = dlq::replay(
        &brokers(),
        &args(&dlq, &group, vec![Filter::Key("k2".into())], false),
        &out,
    )
    .await
    .expect("filtered replay");
    assert_eq!(
        (
            filtered.replayed,
            filtered.skipped_by_filter,
            filtered.failed
        ),
        (1, 2, 0)
    );

    let by_error = dlq::replay(
        &brokers(),
        &args(&dlq, &group, vec![Filter::Error("PoisonB".into())], false),
        &out,
    )
    .await
    .expect("replay by error");
    assert_eq!(by_error.replayed, 0, "k2 was replayed already");

    let rest = dlq::replay(&brokers(), &args(&dlq, &group, vec![], false), &out)
        .await
        .expect("replay");
    assert_eq!(
        (rest.replayed, rest.already_replayed, rest.failed),
        (2, 1, 0)
    );

    let again = dlq::replay(&brokers(), &args(&dlq, &group, vec![], false), &out)
        .await
        .expect("second replay");
    assert_eq!((again.replayed, again.skipped_by_filter), (0, 0));

    let replayed = dlq::read(&brokers(), &original, 10).await.expect("read");
    let mut keys: Vec<_> = replayed.iter().filter_map(|r| r.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["k1", "k2", "k3"], "each record once");
    let k2 = replayed
        .iter()
        .find(|r| r.key.as_deref() == Some("k2"))
        .expect("k2");
    assert_eq!(k2.payload.as_deref(), Some("{\"orderId\":\"k2\"}"));
    assert!(k2
        .headers
        .iter()
        .any(|h| h.key == "eventId" && h.value.as_deref() == Some("event-k2")));
    assert!(
        !k2.headers.iter().any(|h| h.key.starts_with("kafka_dlt-")),
        "{:?}",
        k2.headers
    );
}

#[tokio::test]
async fn replay_by_original_offset_takes_only_that_record() {
    let (original, dlq) = dead_letters().await;
    let group = platform::testing::unique_name("ops_replay");
    let summary = dlq::replay(
        &brokers(),
        &args(&dlq, &group, vec![Filter::OriginalOffset(12)], false),
        &Output::new(true),
    )
    .await
    .expect("replay");
    assert_eq!(summary.replayed, 1);
    let replayed = dlq::read(&brokers(), &original, 10).await.expect("read");
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].key.as_deref(), Some("k3"));
}

#[tokio::test]
async fn the_runbooks_replay_script_replays_through_opsctl_once() {
    let (original, dlq) = dead_letters().await;
    let group = platform::testing::unique_name("ops_replay");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manual-tests/replay-dlq.sh");
    let run = || {
        std::process::Command::new("bash")
            .arg(&script)
            .args([dlq.as_str(), "--group", &group, "--json"])
            .env("OPSCTL", env!("CARGO_BIN_EXE_opsctl"))
            .env("OPSCTL_KAFKA_BOOTSTRAP_SERVERS", bootstrap())
            .output()
            .expect("script runs")
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(summary["replayed"], 3);
    let second: serde_json::Value = serde_json::from_slice(&run().stdout).expect("json");
    assert_eq!(second["replayed"], 0);
    assert_eq!(
        dlq::read(&brokers(), &original, 10)
            .await
            .expect("read")
            .len(),
        3
    );
}
