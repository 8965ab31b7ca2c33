//! `spawn_app()` and the requests tests make.

use customer_facing_service::{Application, Settings};
use platform::testing::DatabaseGuard;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// A running application and what tests need to talk to it.
pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    /// How to reach this app's database (a second replica can share it).
    pub db_options: sqlx::postgres::PgConnectOptions,
    pub client: reqwest::Client,
    pub topic: String,
    /// This app's `orders.released` topic (consumed only when a test turns the
    /// consumer on).
    pub released_topic: String,
    /// This app's consumer group, so tests never share a group (or its rebalances).
    pub consumer_group: String,
    shutdown: CancellationToken,
    manager_token: OnceCell<String>,
    /// The database this app created, dropped with the app.
    owned_database: Option<DatabaseGuard>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Prefix of the databases tests create (`cfs_<32 hex>`, which scripts/test.sh's
/// cleanup knows); each is stamped with its creation time (unix seconds) as its
/// comment, so the sweep can tell old ones from those of a run in progress.
const DATABASE_PREFIX: &str = "cfs";

/// Once per test process: drops test databases created more than an hour ago.
fn sweep_old_databases() {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        std::thread::spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let names: Vec<String> = runtime.block_on(async {
                let Ok(mut server) =
                    sqlx::postgres::PgConnection::connect(&platform::testing::server_url()).await
                else {
                    return Vec::new();
                };
                let cutoff = chrono::Utc::now().timestamp() - 3600;
                sqlx::query_scalar(
                    "SELECT datname FROM (
                         SELECT datname, shobj_description(oid, 'pg_database') AS created
                         FROM pg_database WHERE datname ~ '^cfs_[0-9a-f]{32}$') d
                     WHERE CASE WHEN created ~ '^[0-9]{1,18}$'
                                THEN created::bigint < $1 ELSE FALSE END",
                )
                .bind(cutoff)
                .fetch_all(&mut server)
                .await
                .unwrap_or_default()
            });
            platform::testing::drop_databases_in_background(names);
        });
    });
}

/// Host and port of the test Redis.
pub fn redis_host_port() -> (String, u16) {
    let url = platform::testing::redis_url();
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(6379)),
        None => (rest.to_owned(), 6379),
    }
}

/// The app with test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app with test settings changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    sweep_old_databases();
    let database = platform::testing::fresh_database(DATABASE_PREFIX)
        .await
        .expect("a fresh database");
    let guard = DatabaseGuard::of(&database);
    let mut app = spawn_app_on(database.clone(), configure).await;
    if let Some(name) = guard.as_ref().map(DatabaseGuard::name) {
        let stamp = format!(
            "COMMENT ON DATABASE \"{name}\" IS '{}'",
            chrono::Utc::now().timestamp()
        );
        sqlx::query(&stamp)
            .execute(&app.db)
            .await
            .expect("the database stamped with its creation time");
    }
    app.owned_database = guard;
    app
}

/// The app on an existing database, e.g. a second replica of another app.
pub async fn spawn_app_on(
    database: sqlx::postgres::PgConnectOptions,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::defaults().expect("default settings");
    settings.common.server_port = Some(0);
    settings.common.server_host = "127.0.0.1".parse().expect("an address");
    settings.database.database_url = Some(database.clone());
    settings.kafka.bootstrap_servers = platform::testing::kafka_bootstrap();
    settings.orders_created_topic = platform::testing::unique_name("orders_created");
    settings.consumer.orders_released_topic = platform::testing::unique_name("orders_released");
    settings.consumer.group_id = platform::testing::unique_name("cfs_group");
    // Off unless a test needs it: a consumer per app would only load the broker.
    settings.consumer.consumers_enabled = false;
    let (host, port) = redis_host_port();
    settings.redis.host = host;
    settings.redis.port = port;
    settings.redis.key_prefix = format!("{}:", platform::testing::unique_name("cfs"));
    configure(&mut settings);
    let topic = settings.orders_created_topic.clone();
    let released_topic = settings.consumer.orders_released_topic.clone();
    let consumer_group = settings.consumer.group_id.clone();
    let application = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = application.shutdown_token();
    tokio::spawn(application.run_until_stopped());
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect_with(database.clone())
        .await
        .expect("the test database");
    TestApp {
        address,
        db,
        db_options: database,
        client: reqwest::Client::new(),
        topic,
        released_topic,
        consumer_group,
        shutdown,
        manager_token: OnceCell::new(),
        owned_database: None,
    }
}

/// A checkout body for `session_id`.
pub fn checkout_body(session_id: &str) -> Value {
    json!({
        "sessionId": session_id,
        "customerInfo": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+14155551234",
            "shippingAddress": {
                "street": "1 Market St", "city": "San Francisco", "state": "CA",
                "postalCode": "94105", "country": "USA"
            }
        }
    })
}

/// A session id no other test uses.
pub fn session() -> String {
    platform::testing::unique_name("s")
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login")
    }

    /// A manager's token (logged in once per app).
    pub async fn manager_token(&self) -> String {
        self.manager_token
            .get_or_init(|| async {
                let body: Value = self
                    .login("manager", "manager123")
                    .await
                    .json()
                    .await
                    .expect("login JSON");
                body["accessToken"].as_str().expect("a token").to_owned()
            })
            .await
            .clone()
    }

    /// A manager's request with a JSON body.
    pub async fn as_manager(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .request(method, path)
            .bearer_auth(self.manager_token().await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("manager request")
    }

    pub async fn create_category(&self, name: &str) -> Value {
        let response = self
            .as_manager(
                Method::POST,
                "/api/v1/categories",
                Some(json!({"name": name, "description": "things"})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("category JSON")
    }

    /// A new category and an active product in it with `quantity` in stock.
    pub async fn create_product(&self, sku: &str, price: f64, quantity: i64) -> Value {
        let category = self
            .create_category(&platform::testing::unique_name("cat"))
            .await;
        self.create_product_in(&category["id"], sku, price, quantity)
            .await
    }

    pub async fn create_product_in(
        &self,
        category_id: &Value,
        sku: &str,
        price: f64,
        quantity: i64,
    ) -> Value {
        let response = self
            .as_manager(
                Method::POST,
                "/api/v1/products",
                Some(json!({
                    "sku": sku, "name": format!("Product {sku}"), "description": "A product",
                    "price": price, "inventoryQuantity": quantity, "categoryId": category_id
                })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("product JSON")
    }

    pub async fn add_to_cart(
        &self,
        session_id: &str,
        product_id: &Value,
        quantity: i64,
    ) -> Response {
        self.request(Method::POST, &format!("/api/v1/carts/{session_id}/items"))
            .json(&json!({"productId": product_id, "quantity": quantity}))
            .send()
            .await
            .expect("add to cart")
    }

    pub async fn checkout(&self, session_id: &str, key: &str) -> Response {
        self.request(Method::POST, "/api/v1/checkout")
            .header("Idempotency-Key", key)
            .json(&checkout_body(session_id))
            .send()
            .await
            .expect("checkout")
    }

    /// Stock of a product, read from the database.
    pub async fn stock(&self, product_id: &Value) -> i32 {
        let id: uuid::Uuid = serde_json::from_value(product_id.clone()).expect("a UUID");
        sqlx::query_scalar("SELECT inventory_quantity FROM products WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await
            .expect("stock")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// The Prometheus exposition.
    pub async fn metrics(&self) -> String {
        platform::testing::metrics(&self.client, &self.address)
            .await
            .expect("metrics text")
    }

    /// The sum of the series `name` whose labels include every `(label, value)`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        platform::testing::metric_sum(&self.metrics().await, name, labels)
    }
}

/// Asserts a problem details body with `status` and returns it.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://api.ecommerce.com/problems/")));
    body
}
