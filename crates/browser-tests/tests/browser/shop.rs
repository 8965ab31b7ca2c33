//! The whole platform for one test, in this process: a payment gateway, the order
//! service and the customer service, on free ports, each with a fresh database, on the
//! test broker with topics of their own. The storefront's order API setting points at
//! this order service, which allows the storefront's origin (CORS), as a local run has
//! it. Dropping the shop stops the services and drops their databases.

use anyhow::Context;
use platform::kafka::TopicSpec;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the test waits for an order to reach a state.
const PATIENCE: Duration = browser_tests::PATIENCE;

pub struct Shop {
    /// The storefront (customer service): `http://127.0.0.1:<port>`.
    pub url: String,
    /// The order service's API.
    pub orders_url: String,
    /// The payment gateway, for its fault knobs.
    pub gateway_url: String,
    pub http: reqwest::Client,
    token: String,
    shutdown: Vec<CancellationToken>,
    databases: Vec<String>,
    topics: Vec<String>,
}

impl Drop for Shop {
    /// A test that failed half-way: stop the services; `scripts/test.sh` drops the
    /// databases and topics of earlier runs by their prefixes.
    fn drop(&mut self) {
        for token in &self.shutdown {
            token.cancel();
        }
    }
}

/// Drops `names` (`WITH (FORCE)`: a stopping service may still hold a connection).
async fn drop_databases(names: &[String]) -> anyhow::Result<()> {
    let mut server =
        sqlx::postgres::PgConnection::connect(&platform::testing::server_url()).await?;
    for name in names {
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        sqlx::query(&drop).execute(&mut server).await?;
    }
    Ok(())
}

/// Deletes `topics` from the test broker.
async fn delete_topics(topics: &[String]) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", platform::testing::kafka_bootstrap())
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    admin.delete_topics(&names, &AdminOptions::new()).await?;
    Ok(())
}

fn database_name(options: &PgConnectOptions) -> anyhow::Result<String> {
    options
        .get_database()
        .map(str::to_owned)
        .context("a database name")
}

/// The URL of the test server's database `options` names (the order service takes
/// its database as a URL).
fn database_url(options: &PgConnectOptions) -> anyhow::Result<String> {
    let server = platform::testing::server_url();
    let base = server.split('?').next().unwrap_or(&server);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Ok(format!("{base}/{}", database_name(options)?))
}

impl Shop {
    pub async fn start() -> anyhow::Result<Self> {
        let mut shutdown = Vec::new();
        let mut databases = Vec::new();

        let gateway = payment_gateway::testing::settings().await?;
        if let Some(options) = &gateway.database.database_url {
            databases.push(database_name(options)?);
        }
        let (gateway_url, gateway_stop) = payment_gateway::testing::start(gateway).await?;
        shutdown.push(gateway_stop);

        let bootstrap = platform::testing::kafka_bootstrap();
        let orders_topic = platform::testing::unique_name("orders_created");
        let payments_topic = platform::testing::unique_name("payments_completed");
        let released_topic = platform::testing::unique_name("orders_released");
        let specs = [
            TopicSpec::with_dlq(&orders_topic),
            TopicSpec::with_dlq(&payments_topic),
            TopicSpec::with_dlq(&released_topic),
        ]
        .concat();
        platform::kafka::ensure_topics(&platform::kafka::Brokers::plaintext(&bootstrap), &specs)
            .await?;
        let topics: Vec<String> = specs.iter().map(|t| t.name.clone()).collect();

        // The storefront's port is chosen first: the order service must allow its origin.
        let shop_port = platform::testing::free_port()?;
        let shop_url = format!("http://127.0.0.1:{shop_port}");

        let order_db = platform::testing::fresh_database("oms").await?;
        databases.push(database_name(&order_db)?);
        let order_settings = order_management_service::Settings::from_args([
            "--server-port=0".to_owned(),
            "--server-host=127.0.0.1".to_owned(),
            "--environment=test".to_owned(),
            format!("--database-url={}", database_url(&order_db)?),
            format!("--kafka-bootstrap-servers={bootstrap}"),
            format!("--orders-created-topic={orders_topic}"),
            format!("--payments-completed-topic={payments_topic}"),
            format!("--orders-released-topic={released_topic}"),
            format!(
                "--consumer-group={}",
                platform::testing::unique_name("oms_group")
            ),
            "--kafka-session-timeout-ms=6000".to_owned(),
            format!("--payment-gateway-url={gateway_url}"),
            "--payment-timeout-ms=2000".to_owned(),
            "--payment-retry-interval-ms=200".to_owned(),
            format!("--cors-allowed-origins={shop_url}"),
            format!("--customer-service-url={shop_url}"),
            // The journey polls its order while it is paid; the limit on anonymous
            // lookups has tests of its own.
            "--order-lookup-burst=1000000".to_owned(),
        ])?;
        let orders = order_management_service::Application::build(order_settings).await?;
        let orders_url = format!("http://127.0.0.1:{}", orders.port());
        shutdown.push(orders.shutdown_token());
        tokio::spawn(orders.run_until_stopped());

        let customer_db = platform::testing::fresh_database("cfs").await?;
        databases.push(database_name(&customer_db)?);
        let mut settings = customer_facing_service::Settings::defaults()
            .map_err(|e| anyhow::anyhow!("customer service settings: {e:?}"))?;
        settings.common.server_port = Some(shop_port);
        settings.common.server_host = "127.0.0.1".parse()?;
        settings.database.database_url = Some(customer_db);
        settings.kafka.bootstrap_servers = bootstrap;
        settings.orders_created_topic = orders_topic;
        settings.consumer.orders_released_topic = released_topic;
        settings.consumer.group_id = platform::testing::unique_name("cfs_group");
        settings.consumer.session_timeout_ms = 6000;
        settings.redis = redis_settings(settings.redis)?;
        settings.order_service_url = orders_url.clone();
        settings.lookup_limits.burst = 1_000_000;
        let customer = customer_facing_service::Application::build(settings).await?;
        shutdown.push(customer.shutdown_token());
        tokio::spawn(customer.run_until_stopped());

        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{shop_url}/api/v1/auth/login"))
            .json(&json!({"username": "manager", "password": "manager123"}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["accessToken"]
            .as_str()
            .context("the demo manager logs in")?
            .to_owned();
        Ok(Self {
            url: shop_url,
            orders_url,
            gateway_url,
            http,
            token,
            shutdown,
            databases,
            topics,
        })
    }

    /// Stops the services, then drops their databases and deletes their topics.
    pub async fn stop(self) -> anyhow::Result<()> {
        for token in &self.shutdown {
            token.cancel();
        }
        // The services finish their requests and close their pools first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop_databases(&self.databases).await?;
        delete_topics(&self.topics).await
    }

    /// A manager's request to the customer service; the answer's JSON.
    async fn manage(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    pub async fn category(&self, name: &str) -> anyhow::Result<Value> {
        self.manage(
            reqwest::Method::POST,
            "/api/v1/categories",
            json!({"name": name, "description": format!("All things {name}")}),
        )
        .await
    }

    pub async fn product(
        &self,
        category: &Value,
        sku: &str,
        name: &str,
        description: &str,
        price: f64,
        stock: i64,
    ) -> anyhow::Result<Value> {
        self.manage(
            reqwest::Method::POST,
            "/api/v1/products",
            json!({"sku": sku, "name": name, "description": description, "price": price,
                   "inventoryQuantity": stock, "categoryId": category["id"]}),
        )
        .await
    }

    /// The product's stock as the API reads it now.
    pub async fn stock(&self, product: &Value) -> anyhow::Result<i64> {
        let id = product["id"].as_str().context("a product id")?;
        let read: Value = self
            .http
            .get(format!("{}/api/v1/products/{id}", self.url))
            .send()
            .await?
            .json()
            .await?;
        read["inventoryQuantity"].as_i64().context("a stock level")
    }

    /// Sets the gateway's fault knobs, e.g. `{"successRate": 0.0}` to decline all.
    pub async fn gateway_faults(&self, faults: Value) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/admin/faults", self.gateway_url))
            .header(
                "Authorization",
                payment_gateway::testing::admin_authorization(),
            )
            .json(&faults)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "faults refused");
        Ok(())
    }

    /// Places an order of `quantity` × `product` through the API (as a customer's
    /// browser would) and returns its number.
    pub async fn order(
        &self,
        product: &Value,
        quantity: i64,
        email: &str,
    ) -> anyhow::Result<String> {
        let session = platform::testing::unique_name("s");
        let added = self
            .http
            .post(format!("{}/api/v1/carts/{session}/items", self.url))
            .json(&json!({"productId": product["id"], "quantity": quantity}))
            .send()
            .await?;
        anyhow::ensure!(
            added.status().is_success(),
            "add to cart: {}",
            added.status()
        );
        let placed: Value = self
            .http
            .post(format!("{}/api/v1/checkout", self.url))
            .header("Idempotency-Key", platform::testing::unique_name("k"))
            .json(&json!({"sessionId": session, "customerInfo": {
                "name": "Grace Hopper", "email": email, "phone": "+14155550123",
                "shippingAddress": {"street": "1 Navy Yard", "city": "Arlington",
                    "state": "VA", "postalCode": "22202", "country": "USA"}}}))
            .send()
            .await?
            .json()
            .await?;
        placed["orderNumber"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("checkout placed no order: {placed}"))
    }

    /// The order as its customer reads it on the order service.
    pub async fn order_status(&self, number: &str, email: &str) -> anyhow::Result<Option<String>> {
        let response = self
            .http
            .get(format!("{}/api/v1/orders/{number}", self.orders_url))
            .header("X-Customer-Email", email)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let order: Value = response.json().await?;
        Ok(order["status"].as_str().map(str::to_owned))
    }

    /// Waits until the order reads `status`.
    pub async fn wait_for_order(
        &self,
        number: &str,
        email: &str,
        status: &str,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.order_status(number, email).await?;
            if seen.as_deref() == Some(status) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "order {number} never became {status}; last seen {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The test Redis, with a key prefix of this shop's own.
fn redis_settings(
    mut redis: customer_facing_service::settings::RedisSettings,
) -> anyhow::Result<customer_facing_service::settings::RedisSettings> {
    let url = platform::testing::redis_url();
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "6379"));
    redis.host = host.to_owned();
    redis.port = port.parse()?;
    redis.key_prefix = format!("{}:", platform::testing::unique_name("cfs"));
    Ok(redis)
}

/// Where screenshots go: `docs/screenshots/` of the repository with
/// `UPDATE_SCREENSHOTS=1` (as `UPDATE_CONTRACTS` rewrites the contracts), otherwise a
/// scratch directory, so a test run leaves the repository as it was.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        std::env::temp_dir().join("storefront-screenshots")
    };
    dir.join(format!("{name}.png"))
}
