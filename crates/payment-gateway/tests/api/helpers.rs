use payment_gateway::Settings;
use platform::testing::DatabaseGuard;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A gateway serving on a free port with a database of its own; stopped when dropped.
pub struct TestGateway {
    pub address: String,
    pub client: reqwest::Client,
    /// The gateway's database, so a test can start a second gateway on it.
    pub database: PgConnectOptions,
    shutdown: CancellationToken,
    /// The database this gateway created, dropped with it.
    _owned_database: Option<DatabaseGuard>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client holding the order service's credential, as the order service calls.
pub fn service_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        payment_gateway::testing::service_authorization()
            .parse()
            .expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A gateway on a fresh `pgw_<32 hex>` database.
pub async fn spawn_gateway() -> TestGateway {
    let database = platform::testing::fresh_database("pgw")
        .await
        .expect("fresh database");
    let owned = DatabaseGuard::of(&database);
    start_gateway(database, owned).await
}

/// A gateway on `database`, which may hold an earlier gateway's ledger.
pub async fn spawn_gateway_on(database: PgConnectOptions) -> TestGateway {
    start_gateway(database, None).await
}

async fn start_gateway(database: PgConnectOptions, owned: Option<DatabaseGuard>) -> TestGateway {
    let mut settings = Settings::for_tests(database.clone()).expect("test settings");
    settings.latency_ms = 1;
    let (address, shutdown) = payment_gateway::testing::start(settings)
        .await
        .expect("gateway builds");
    TestGateway {
        address,
        client: service_client(),
        database,
        shutdown,
        _owned_database: owned,
    }
}

impl TestGateway {
    /// Stops the gateway (as a restart would), keeping its database.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    pub async fn charge(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/payments", self.address))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn refund(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/refunds", self.address))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("json")
    }

    pub async fn ledger(&self, order_id: Uuid) -> Vec<Value> {
        let lines = self
            .get_json(&format!("/api/v1/payments?orderId={order_id}"))
            .await;
        lines.as_array().cloned().expect("a list")
    }

    pub async fn refunds(&self, order_id: Uuid) -> Vec<Value> {
        let lines = self
            .get_json(&format!("/api/v1/refunds?orderId={order_id}"))
            .await;
        lines.as_array().cloned().expect("a list")
    }

    pub async fn set_faults(&self, faults: Value) -> reqwest::Response {
        self.client
            .put(format!("{}/admin/faults", self.address))
            .header(
                reqwest::header::AUTHORIZATION,
                payment_gateway::testing::admin_authorization(),
            )
            .json(&faults)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn metrics(&self) -> String {
        platform::testing::metrics(&self.client, &self.address)
            .await
            .expect("metrics text")
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
