use payment_gateway::{Application, Settings};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A gateway serving on a free port; stopped when dropped.
pub struct TestGateway {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_gateway() -> TestGateway {
    let mut settings = Settings::for_tests().expect("test settings");
    settings.latency_ms = 1;
    let app = Application::build(settings).await.expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestGateway {
        address,
        client: reqwest::Client::new(),
        shutdown,
    }
}

impl TestGateway {
    pub async fn charge(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/payments", self.address))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn ledger(&self, order_id: Uuid) -> Vec<Value> {
        self.client
            .get(format!(
                "{}/api/v1/payments?orderId={order_id}",
                self.address
            ))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("json ledger")
    }

    pub async fn set_faults(&self, faults: Value) -> reqwest::Response {
        self.client
            .put(format!("{}/admin/faults", self.address))
            .json(&faults)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/actuator/prometheus", self.address))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text")
    }
}

pub fn charge_body(order_id: Uuid) -> Value {
    json!({
        "orderId": order_id,
        "orderNumber": "ORD-20251124-1",
        "amount": 299.98,
        "customerEmail": "ada@example.com"
    })
}
