//! Fault tests with the real binary: killed mid-stream (SIGKILL) and restarted, the
//! service loses and duplicates nothing.

use crate::helpers::{order_created, wait_until, Fixture, TestApp};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Instance {
    child: Child,
    address: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(fixture: &Fixture) -> Instance {
    let port = platform::testing::free_port().expect("a free port");
    let child = Command::new(env!("CARGO_BIN_EXE_order-management-service"))
        .arg(format!("--server-port={port}"))
        .args(
            fixture
                .settings()
                .into_iter()
                .map(|(k, v)| format!("--{k}={v}")),
        )
        .arg("--log-level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let instance = Instance {
        child,
        address: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let url = format!("{}/actuator/health/readiness", instance.address);
    let ready = wait_until(Duration::from_secs(30), || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "the service became ready");
    instance
}

#[tokio::test]
async fn killing_the_service_mid_stream_and_restarting_it_loses_and_duplicates_nothing() {
    let fixture = Fixture::new().await;
    let mut first = start(&fixture).await;
    let app = TestApp::new(
        first.address.clone(),
        &fixture,
        vec![fixture.gateway_shutdown.clone()],
    );
    let events: Vec<_> = (0..40)
        .map(|i| order_created(&format!("restart{i}@example.com")))
        .collect();
    for event in &events[..20] {
        app.publish(event).await;
    }
    let some_done = wait_until(Duration::from_secs(30), || async {
        app.order_count().await >= 5
    })
    .await;
    assert!(some_done, "the first instance processed some orders");
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    for event in &events[20..] {
        app.publish(event).await;
    }

    let second = start(&fixture).await;
    let app = TestApp::new(
        second.address.clone(),
        &fixture,
        vec![fixture.gateway_shutdown.clone()],
    );
    for event in &events {
        let paid = wait_until(Duration::from_secs(90), || async {
            let (code, body) = app.get_order(&event.order_number).await;
            code == 200 && body["status"] == "PAID"
        })
        .await;
        assert!(
            paid,
            "order {} was paid after the restart",
            event.order_number
        );
        let ledger = app.ledger(event.order_id).await;
        assert_eq!(ledger.len(), 1, "one charge for {}", event.order_number);
        assert_eq!(ledger[0]["chargeCount"], 1);
    }
    assert_eq!(app.order_count().await, 40);
    let processed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM processed_events WHERE event_type = 'ORDER_CREATED'",
    )
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(processed, 40);
}
