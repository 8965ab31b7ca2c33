//! The binary itself: help, one-line errors and exit codes.

use crate::helpers::{customer_db, database_url, order_db};
use std::process::Command;

fn opsctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .args(args)
        .env_remove("OPSCTL_CUSTOMER_DATABASE_URL")
        .env_remove("CUSTOMER_DATABASE_URL")
        .env_remove("CUSTOMER_SERVICE_DATABASE_URL")
        .output()
        .expect("opsctl runs")
}

#[test]
fn help_lists_every_command() {
    let out = opsctl(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "kafka",
        "dlq",
        "outbox",
        "idempotency",
        "reconcile",
        "smoke",
        "manager",
    ] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn a_failure_is_one_line_on_stderr_and_exit_code_1() {
    let out = opsctl(&[
        "outbox",
        "status",
        "--customer-database-url",
        "postgres://postgres@127.0.0.1:1/none",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn reconcile_exits_1_with_json_findings_and_0_when_all_is_well() {
    let (customer, customer_name) = customer_db().await;
    let (_, order_name) = order_db().await;
    let run = |name: String, order: String| {
        Command::new(env!("CARGO_BIN_EXE_opsctl"))
            .args(["reconcile", "--no-ledger", "--json"])
            .args(["--customer-database-url", &database_url(&name)])
            .args(["--order-database-url", &database_url(&order)])
            .output()
            .expect("opsctl runs")
    };
    let ok = run(customer_name.clone(), order_name.clone());
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    sqlx::query(
        "INSERT INTO order_created_outbox (id, aggregate_id, payload, topic, created_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), '{\"orderNumber\":\"ORD-X\"}', 'orders.created',
                 (now() AT TIME ZONE 'UTC') - interval '1 hour')",
    )
    .execute(&customer)
    .await
    .expect("checkout inserted");
    let bad = run(customer_name, order_name);
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json");
    assert_eq!(report["findings"][0]["kind"], "missing");
    assert_eq!(report["findings"][0]["orderNumber"], "ORD-X");
}

#[test]
fn smoke_takes_no_password_on_the_command_line_and_has_no_default() {
    let on_the_line = opsctl(&["smoke", "--password", "manager123"]);
    assert_eq!(on_the_line.status.code(), Some(2), "--password is refused");

    // Nothing given: no demo password is tried; the error names where to put one.
    let out = Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .args(["smoke", "--customer-base", "http://127.0.0.1:1"])
        .args(["--order-base", "http://127.0.0.1:1"])
        .env_remove("OPSCTL_SMOKE_PASSWORD")
        .output()
        .expect("opsctl runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OPSCTL_SMOKE_PASSWORD"), "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
    assert!(
        !err.contains("cannot reach") && !err.contains("127.0.0.1:1"),
        "{err}"
    );
}
