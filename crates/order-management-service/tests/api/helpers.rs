use events::{Customer, EventTime, OrderCreated, OrderItem, ShippingAddress};
use order_management_service::{Application, Settings};
use platform::auth::JwtKeys;
use platform::config::{JwtSettings, Secret};
use platform::kafka::{Producer, TopicSpec};
use platform::testing::DatabaseGuard;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for something asynchronous to happen.
pub const PATIENCE: Duration = Duration::from_secs(40);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub gateway_address: String,
    pub orders_topic: String,
    pub payments_topic: String,
    pub released_topic: String,
    pub producer: Producer,
    pub jwt: JwtKeys,
    shutdown: Vec<CancellationToken>,
    /// Dropped with the last instance on the fixture's database.
    _database: Option<Arc<DatabaseGuard>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for token in &self.shutdown {
            token.cancel();
        }
    }
}

fn database_url(name: &str) -> String {
    let server = platform::testing::server_url();
    let base = server.split('?').next().unwrap_or(&server);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{name}")
}

/// A payment gateway of its own, answering fast: its address and stop token.
pub async fn spawn_gateway() -> (String, CancellationToken) {
    payment_gateway::testing::spawn()
        .await
        .expect("gateway starts on a fresh database")
}

/// Everything an instance needs besides its own port: database, topics, group, gateway.
pub struct Fixture {
    pub database_url: String,
    pub db: PgPool,
    pub bootstrap: platform::kafka::Brokers,
    pub orders_topic: String,
    pub payments_topic: String,
    pub released_topic: String,
    pub group: String,
    pub gateway_address: String,
    pub gateway_shutdown: CancellationToken,
    pub no_customer_service: String,
    /// The fixture's database, dropped when the fixture and every instance on it are.
    pub database: Option<Arc<DatabaseGuard>>,
}

impl Fixture {
    pub async fn new() -> Self {
        let (gateway_address, gateway_shutdown) = spawn_gateway().await;
        let options = platform::testing::fresh_database("oms")
            .await
            .expect("fresh database");
        let db_name = options.get_database().expect("database name").to_owned();
        let database = DatabaseGuard::of(&options).map(Arc::new);
        let bootstrap = platform::testing::kafka_brokers();
        let orders_topic = platform::testing::unique_name("orders_created");
        let payments_topic = platform::testing::unique_name("payments_completed");
        let released_topic = platform::testing::unique_name("orders_released");
        let specs = [
            TopicSpec::with_dlq(&orders_topic),
            TopicSpec::with_dlq(&payments_topic),
            TopicSpec::with_dlq(&released_topic),
        ]
        .concat();
        platform::kafka::ensure_topics(&bootstrap, &specs)
            .await
            .expect("topics created");
        let db = PgPool::connect_with(options).await.expect("test pool");
        Self {
            database_url: database_url(&db_name),
            db,
            bootstrap,
            orders_topic,
            payments_topic,
            released_topic,
            group: platform::testing::unique_name("oms_group"),
            gateway_address,
            gateway_shutdown,
            no_customer_service: format!(
                "http://127.0.0.1:{}",
                platform::testing::free_port().expect("a free port")
            ),
            database,
        }
    }

    /// The instance's settings as `(flag, value)` pairs; the binary reads the same as
    /// `ORDER_SERVICE_<FLAG>` variables.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("environment", "test".into()),
            ("database-url", self.database_url.clone()),
            ("kafka-bootstrap-servers", self.bootstrap.servers.clone()),
            ("orders-created-topic", self.orders_topic.clone()),
            ("payments-completed-topic", self.payments_topic.clone()),
            ("orders-released-topic", self.released_topic.clone()),
            ("consumer-group", self.group.clone()),
            ("kafka-session-timeout-ms", "6000".into()),
            ("consumer-max-attempts", "2".into()),
            ("payment-gateway-url", self.gateway_address.clone()),
            (
                "payment-gateway-token",
                payment_gateway::testing::SERVICE_TOKEN.into(),
            ),
            ("payment-timeout-ms", "1000".into()),
            ("payment-max-attempts", "2".into()),
            ("payment-retry-backoff-ms", "50".into()),
            ("payment-breaker-open-ms", "1500".into()),
            ("payment-retry-interval-ms", "200".into()),
            ("payment-retry-max-delay-ms", "1000".into()),
            // No customer-facing service here: a port nothing listens on, so an unknown
            // order number is a plain 404 and never another platform's order.
            ("customer-service-url", self.no_customer_service.clone()),
            // Tests poll the anonymous lookup while orders are consumed; the limit on
            // it has tests of its own (lookups.rs), which set it back.
            ("order-lookup-burst", "1000000".into()),
        ]
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// An app whose settings are overridden by `overrides` (`("flag", "value")`).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let fixture = Fixture::new().await;
    let args = std::iter::once("--server-port=0".to_owned())
        .chain(
            fixture
                .settings()
                .into_iter()
                .map(|(k, v)| format!("--{k}={v}")),
        )
        .chain(overrides.iter().map(|(k, v)| format!("--{k}={v}")));
    let settings = Settings::from_args(args).expect("settings");
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let app_shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp::new(
        address,
        &fixture,
        vec![app_shutdown, fixture.gateway_shutdown.clone()],
    )
}

impl TestApp {
    pub fn new(address: String, fixture: &Fixture, shutdown: Vec<CancellationToken>) -> Self {
        let producer =
            Producer::new(&fixture.bootstrap, Duration::from_secs(10)).expect("producer");
        let jwt = JwtKeys::from_settings(
            &JwtSettings {
                secret: Secret::new(platform::auth::DEMO_SECRET),
                previous_secrets: vec![],
                issuer: "ecommerce-platform-dev".into(),
                expiration_minutes: 15,
            },
            true,
        )
        .expect("keys");
        Self {
            address,
            client: reqwest::Client::new(),
            db: fixture.db.clone(),
            gateway_address: fixture.gateway_address.clone(),
            orders_topic: fixture.orders_topic.clone(),
            payments_topic: fixture.payments_topic.clone(),
            released_topic: fixture.released_topic.clone(),
            producer,
            jwt,
            shutdown,
            _database: fixture.database.clone(),
        }
    }
}

/// An OrderCreated event of two lines for `email`.
pub fn order_created(email: &str) -> OrderCreated {
    let suffix = Uuid::new_v4().simple().to_string();
    OrderCreated {
        event_id: Uuid::new_v4(),
        event_type: events::ORDER_CREATED.to_owned(),
        event_version: events::EVENT_VERSION.to_owned(),
        timestamp: EventTime::now(),
        correlation_id: Some(format!("checkout-{suffix}")),
        order_id: Uuid::new_v4(),
        order_number: format!("ORD-T-{}", &suffix[..12]),
        customer: Customer {
            name: "Ada Lovelace".into(),
            email: email.into(),
            phone: "+44 20 7946 0000".into(),
            shipping_address: ShippingAddress {
                street: "12 Analytical Row".into(),
                city: "London".into(),
                state: "LDN".into(),
                postal_code: "N1 9GU".into(),
                country: "UK".into(),
            },
        },
        items: vec![
            OrderItem {
                product_id: Uuid::new_v4(),
                product_sku: "SKU-LAPTOP".into(),
                product_name: "Laptop".into(),
                quantity: 2,
                price_snapshot: Decimal::new(14999, 2),
                subtotal: Decimal::new(29998, 2),
            },
            OrderItem {
                product_id: Uuid::new_v4(),
                product_sku: "SKU-MOUSE".into(),
                product_name: "Mouse".into(),
                quantity: 1,
                price_snapshot: Decimal::new(2999, 2),
                subtotal: Decimal::new(2999, 2),
            },
        ],
        subtotal: Decimal::new(32997, 2),
        cart_id: Some(Uuid::new_v4()),
    }
}

impl TestApp {
    pub async fn publish(&self, event: &OrderCreated) {
        let payload = serde_json::to_vec(event).expect("serializable");
        self.publish_raw(
            &event.order_id.to_string(),
            &payload,
            &[
                (events::TYPE_ID_HEADER, events::ORDER_CREATED_TYPE_ID),
                ("eventType", events::ORDER_CREATED),
            ],
        )
        .await;
    }

    pub async fn publish_raw(&self, key: &str, payload: &[u8], headers: &[(&str, &str)]) {
        self.producer
            .send(&self.orders_topic, Some(key), payload, headers)
            .await
            .expect("record produced");
    }

    pub async fn get_order(&self, order_number: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/api/v1/orders/{order_number}", self.address))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the order reads with `status`, and returns it.
    pub async fn wait_for_status(&self, order_number: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (code, body) = self.get_order(order_number).await;
            if code == 200 && body["status"] == status {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_number} never became {status}; last seen {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        platform::testing::metrics(&self.client, &self.address)
            .await
            .expect("metrics text")
    }

    /// The value of the first series of `name` whose labels contain every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics().await, name, labels)
    }

    pub fn manager_token(&self) -> String {
        self.jwt.sign("manager", &["MANAGER"])
    }

    pub fn guest_token(&self) -> String {
        self.jwt.sign("guest", &["GUEST"])
    }

    pub async fn set_gateway_faults(&self, faults: Value) {
        let response = self
            .client
            .put(format!("{}/admin/faults", self.gateway_address))
            .header(
                "Authorization",
                payment_gateway::testing::admin_authorization(),
            )
            .json(&faults)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
    }

    /// The gateway's ledger lines of the checkout's order `order_id` (the OrderCreated
    /// `orderId`, which the service charges under).
    pub async fn ledger(&self, order_id: Uuid) -> Vec<Value> {
        self.client
            .get(format!(
                "{}/api/v1/payments?orderId={order_id}",
                self.gateway_address
            ))
            .header(
                "Authorization",
                payment_gateway::testing::admin_authorization(),
            )
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("ledger json")
    }

    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.db)
            .await
            .expect("count")
    }
}

pub use platform::testing::metric_value;

/// Polls `check` every 100 ms until it is true or `patience` runs out.
pub async fn wait_until<F, Fut>(patience: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One record read back from a topic: key, decoded value, headers.
pub struct Read<T> {
    pub key: Option<String>,
    pub value: T,
    pub headers: std::collections::HashMap<String, String>,
}

/// Reads `topic` from its start until `count` records have come, or panics after
/// [`PATIENCE`].
pub async fn read_records<T: serde::de::DeserializeOwned>(
    topic: &str,
    count: usize,
) -> Vec<Read<T>> {
    use rdkafka::message::{Headers, Message};
    let consumer = platform::testing::reader(topic).expect("reader");
    let mut read = Vec::new();
    while read.len() < count {
        let message = tokio::time::timeout(PATIENCE, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("record {} of {topic} never came", read.len() + 1))
            .expect("record");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| {
                        Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let value = serde_json::from_slice(message.payload().expect("a value")).expect("decodes");
        read.push(Read {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            value,
            headers,
        });
    }
    read
}

/// What `order_db` holds for one order, read in one statement (one snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub order_status: String,
    pub payment_status: String,
    /// `payments.completed` outbox rows of the order.
    pub completed_rows: i64,
    /// `orders.released` outbox rows of the order.
    pub released_rows: i64,
}

impl TestApp {
    /// The order `order_number`'s state, its payment's and its outbox rows, at once.
    pub async fn snapshot(&self, order_number: &str) -> Option<Snapshot> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT o.status::text, p.status::text, \
                 (SELECT COUNT(*) FROM payment_completed_outbox b \
                  WHERE b.aggregate_id = o.id AND b.event_type = 'PaymentCompletedEvent'), \
                 (SELECT COUNT(*) FROM payment_completed_outbox b \
                  WHERE b.aggregate_id = o.source_order_id AND b.event_type = 'OrderReleasedEvent') \
             FROM orders o JOIN payment_transactions p ON p.order_id = o.id \
             WHERE o.order_number = $1",
        )
        .bind(order_number)
        .fetch_optional(&self.db)
        .await
        .expect("snapshot");
        row.map(
            |(order_status, payment_status, completed_rows, released_rows)| Snapshot {
                order_status,
                payment_status,
                completed_rows,
                released_rows,
            },
        )
    }

    /// A manager's cancel of `order_number` for `reason`: status and body.
    pub async fn cancel(&self, order_number: &str, reason: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/orders/{order_number}/cancel",
                self.address
            ))
            .bearer_auth(self.manager_token())
            .json(&serde_json::json!({ "reason": reason }))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Cancels `order_number`, retrying while a gateway call is in flight (409).
    pub async fn cancel_when_idle(&self, order_number: &str, reason: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.cancel(order_number, reason).await;
            if status == 200 {
                return body;
            }
            assert_eq!(status, 409, "{body}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "cancel of {order_number} never succeeded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The payment row's column `column` (as text) of order `order_number`; `None`
    /// while it is NULL or the order does not exist yet.
    pub async fn payment_column(&self, order_number: &str, column: &str) -> Option<String> {
        sqlx::query_scalar::<_, Option<String>>(&format!(
            "SELECT p.{column}::text FROM payment_transactions p \
             JOIN orders o ON o.id = p.order_id WHERE o.order_number = $1"
        ))
        .bind(order_number)
        .fetch_optional(&self.db)
        .await
        .expect("payment row")
        .flatten()
    }

    /// The gateway's refunds of the checkout's order `order_id`.
    pub async fn refunds(&self, order_id: Uuid) -> Vec<Value> {
        self.client
            .get(format!(
                "{}/api/v1/refunds?orderId={order_id}",
                self.gateway_address
            ))
            .header(
                "Authorization",
                payment_gateway::testing::admin_authorization(),
            )
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .unwrap_or_default()
    }
}
