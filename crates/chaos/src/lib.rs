//! A harness that runs the platform as real processes, with private dependencies it can
//! break: its own broker (nisshi on a free port, durable SQLite storage), its own Redis
//! and payment gateway, fresh databases on the shared PostgreSQL. A [`Load`] drives
//! steady checkouts the way a real client does (retrying a failed request with the same
//! `Idempotency-Key`), and [`Books`] checks afterwards that nothing was lost, duplicated
//! or charged twice.
//!
//! Binaries come from [`bin_dir`].

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Where the service binaries are: `CHAOS_BIN_DIR`, or the profile directory of the
/// running test executable (`target/<profile>/deps/..` → `target/<profile>`), where
/// `cargo test --workspace` has built every binary of the workspace.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CHAOS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/debug"))
}

async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on port {port} after {timeout:?}")
}

/// A child process we can kill -9 and start again with the same command.
pub struct Process {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub fn new(
        name: &str,
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> Self {
        Self {
            name: name.to_owned(),
            program,
            args,
            env,
            dir: None,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        }
    }

    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        self.child = Some(
            command
                .spawn()
                .with_context(|| format!("starting {}", self.program.display()))?,
        );
        Ok(())
    }

    /// SIGKILL: no graceful shutdown, no flush.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status()?;
            }
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                child.start_kill()?;
                child.wait().await?;
            }
        }
        Ok(())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A service process with an HTTP port.
pub struct Service {
    pub process: Process,
    pub port: u16,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.process.start()?;
        self.wait_ready(Duration::from_secs(60)).await?;
        Ok(started.elapsed())
    }

    pub async fn readiness(&self) -> Option<u16> {
        let response = reqwest::Client::new()
            .get(format!("{}/actuator/health/readiness", self.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        Some(response.status().as_u16())
    }

    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_readiness(200, timeout).await
    }

    pub async fn wait_readiness(&self, status: u16, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.readiness().await == Some(status) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "{} readiness did not become {status} within {timeout:?}; log tail:\n{}",
            self.process.name,
            self.process.log_tail(20)
        )
    }

    /// The value of a series from `/actuator/prometheus` (labels must all match).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<Option<f64>> {
        let text = reqwest::get(format!("{}/actuator/prometheus", self.url()))
            .await?
            .text()
            .await?;
        Ok(metric_value(&text, name, labels))
    }
}

pub use platform::testing::metric_value;

/// The whole platform as processes, with private broker, Redis and gateway.
pub struct Platform {
    pub dir: PathBuf,
    pub broker: Process,
    pub broker_port: u16,
    pub redis: Process,
    pub redis_port: u16,
    pub gateway: Service,
    pub customer: Service,
    pub order: Service,
    pub customer_db: String,
    pub order_db: String,
    /// The gateway's ledger (`payment_gateway_db` of this run).
    pub gateway_db: String,
    pub orders_topic: String,
    pub payments_topic: String,
}

impl Platform {
    /// Starts everything and waits until the three services are ready.
    pub async fn start(overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(platform::testing::unique_name("chaos"));
        std::fs::create_dir_all(&dir)?;
        let broker_port = platform::testing::free_port()?;
        let nisshi = which("nisshi")
            .context("the nisshi broker is not installed (scripts/broker.sh start installs it)")?;
        let mut broker = Process::new(
            "broker",
            nisshi,
            vec![
                "broker".into(),
                "--listener-url".into(),
                format!("tcp://127.0.0.1:{broker_port}"),
                "--advertised-listener-url".into(),
                format!("tcp://127.0.0.1:{broker_port}"),
                "--storage-engine".into(),
                "sqlite://broker.db".into(),
                "--group-initial-rebalance-delay".into(),
                "100ms".into(),
            ],
            vec![],
            &dir,
        )
        .in_dir(&dir);
        broker.start()?;
        wait_for_port(broker_port, Duration::from_secs(30)).await?;

        let redis_port = platform::testing::free_port()?;
        let mut redis = Process::new(
            "redis",
            which("redis-server").context("redis-server is not installed")?,
            vec![
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                redis_port.to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ],
            vec![],
            &dir,
        )
        .in_dir(&dir);
        redis.start()?;
        wait_for_port(redis_port, Duration::from_secs(10)).await?;

        let customer_db = database_url(&platform::testing::fresh_database("chaos").await?);
        let order_db = database_url(&platform::testing::fresh_database("chaos").await?);
        let gateway_db = database_url(&platform::testing::fresh_database("chaos").await?);
        let orders_topic = platform::testing::unique_name("orders_created");
        let payments_topic = platform::testing::unique_name("payments_completed");
        let bootstrap = format!("127.0.0.1:{broker_port}");
        let setting = |name: &str, default: String| -> String {
            overrides
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .unwrap_or(default)
        };

        let gateway_port = platform::testing::free_port()?;
        let gateway = Service {
            process: Process::new(
                "payment-gateway",
                bin.join("payment-gateway"),
                vec![
                    "--server-port".into(),
                    gateway_port.to_string(),
                    "--database-url".into(),
                    gateway_db.clone(),
                    "--latency-ms".into(),
                    "5".into(),
                ],
                vec![],
                &dir,
            ),
            port: gateway_port,
        };
        let customer_port = platform::testing::free_port()?;
        let customer = Service {
            process: Process::new(
                "customer-facing-service",
                bin.join("customer-facing-service"),
                vec![
                    "--server-port".into(),
                    customer_port.to_string(),
                    "--database-url".into(),
                    customer_db.clone(),
                    "--kafka-bootstrap-servers".into(),
                    bootstrap.clone(),
                    "--orders-created-topic".into(),
                    orders_topic.clone(),
                    "--redis-port".into(),
                    redis_port.to_string(),
                    "--outbox-max-age-secs".into(),
                    setting("outbox-max-age-secs", "21600".into()),
                ],
                vec![],
                &dir,
            ),
            port: customer_port,
        };
        let order_port = platform::testing::free_port()?;
        let order = Service {
            process: Process::new(
                "order-management-service",
                bin.join("order-management-service"),
                vec![
                    "--server-port".into(),
                    order_port.to_string(),
                    "--database-url".into(),
                    order_db.clone(),
                    "--kafka-bootstrap-servers".into(),
                    bootstrap,
                    "--orders-created-topic".into(),
                    orders_topic.clone(),
                    "--payments-completed-topic".into(),
                    payments_topic.clone(),
                    "--kafka-session-timeout-ms".into(),
                    "6000".into(),
                    "--payment-gateway-url".into(),
                    format!("http://127.0.0.1:{gateway_port}"),
                    "--payment-timeout-ms".into(),
                    setting("payment-timeout-ms", "1000".into()),
                    "--payment-breaker-open-ms".into(),
                    setting("payment-breaker-open-ms", "2000".into()),
                    "--payment-retry-interval-ms".into(),
                    "250".into(),
                    "--payment-retry-max-delay-ms".into(),
                    "2000".into(),
                ],
                vec![],
                &dir,
            ),
            port: order_port,
        };
        let mut platform = Self {
            dir,
            broker,
            broker_port,
            redis,
            redis_port,
            gateway,
            customer,
            order,
            customer_db,
            order_db,
            gateway_db,
            orders_topic,
            payments_topic,
        };
        platform.gateway.start().await?;
        platform.customer.start().await?;
        platform.order.start().await?;
        Ok(platform)
    }

    pub async fn restart_broker(&mut self) -> anyhow::Result<()> {
        self.broker.start()?;
        wait_for_port(self.broker_port, Duration::from_secs(30)).await
    }

    pub async fn restart_redis(&mut self) -> anyhow::Result<()> {
        self.redis.start()?;
        wait_for_port(self.redis_port, Duration::from_secs(10)).await
    }

    /// Sets the gateway's fault knobs (`PUT /admin/faults`).
    pub async fn gateway_faults(&self, faults: Value) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .put(format!("{}/admin/faults", self.gateway.url()))
            .json(&faults)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("setting gateway faults failed: {}", response.status());
        }
        Ok(())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.order.process.stop().await?;
        self.customer.process.stop().await?;
        self.gateway.process.stop().await?;
        self.broker.kill9().await?;
        self.redis.kill9().await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

fn database_url(options: &sqlx::postgres::PgConnectOptions) -> String {
    let server = platform::testing::server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{}", options.get_database().unwrap_or("postgres"))
}

fn which(program: &str) -> Option<PathBuf> {
    let home_cargo = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok()
        .map(|c| c.join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home_cargo)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(program))
        .find(|p| p.exists())
}

/// The customer's side of a checkout.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub idempotency_key: String,
    pub order_number: String,
}

/// Steady checkouts from `customers` concurrent clients, each retrying a failed request
/// (connection refused, 5xx) with the same idempotency key until it gets an answer.
pub struct Load {
    stop: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub accepted: Arc<Mutex<Vec<Checkout>>>,
    pub rejected: Arc<Mutex<Vec<(u16, String)>>>,
    pub retries: Arc<Mutex<u64>>,
}

impl Load {
    /// Creates products (stock `stock` each) and starts the clients.
    pub async fn start(
        customer_base: &str,
        customers: usize,
        products: usize,
        stock: u32,
    ) -> anyhow::Result<Self> {
        let product_ids = Arc::new(create_products(customer_base, products, stock).await?);
        let stop = CancellationToken::new();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let retries = Arc::new(Mutex::new(0u64));
        let mut handles = Vec::new();
        for customer in 0..customers {
            let (stop, accepted, rejected, retries, ids) = (
                stop.clone(),
                accepted.clone(),
                rejected.clone(),
                retries.clone(),
                product_ids.clone(),
            );
            let base = customer_base.to_owned();
            handles.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let mut i = customer;
                while !stop.is_cancelled() {
                    let session = format!("chaos-{}", uuid::Uuid::new_v4().simple());
                    let key = uuid::Uuid::new_v4().to_string();
                    let product = &ids[i % ids.len()];
                    i += 1;
                    let add = json!({"productId": product, "quantity": 1});
                    let status = retry(&retries, &stop, || {
                        http.post(format!("{base}/api/v1/carts/{session}/items"))
                            .json(&add)
                            .send()
                    })
                    .await;
                    let Some((status, body)) = status else { break };
                    if status != 200 {
                        rejected
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .push((status, body));
                        continue;
                    }
                    let body = checkout_body(&session);
                    let result = retry(&retries, &stop, || {
                        http.post(format!("{base}/api/v1/checkout"))
                            .header("Idempotency-Key", &key)
                            .json(&body)
                            .send()
                    })
                    .await;
                    let Some((status, text)) = result else { break };
                    if status == 201 {
                        let value: Value = serde_json::from_str(&text)?;
                        let order_number = value["orderNumber"]
                            .as_str()
                            .context("no orderNumber")?
                            .to_owned();
                        accepted
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .push(Checkout {
                                idempotency_key: key,
                                order_number,
                            });
                    } else {
                        rejected
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .push((status, text));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            }));
        }
        Ok(Self {
            stop,
            handles,
            accepted,
            rejected,
            retries,
        })
    }

    pub fn accepted_count(&self) -> usize {
        self.accepted.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Waits until `n` more checkouts were accepted.
    pub async fn wait_for_more(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let target = self.accepted_count() + n;
        let deadline = Instant::now() + timeout;
        while self.accepted_count() < target {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {target} checkouts accepted within {timeout:?}",
                    self.accepted_count()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the clients; every in-flight checkout finishes first.
    pub async fn stop(self) -> anyhow::Result<(Vec<Checkout>, Vec<(u16, String)>, u64)> {
        self.stop.cancel();
        for handle in self.handles {
            handle.await??;
        }
        let accepted = self
            .accepted
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clone();
        let rejected = self
            .rejected
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clone();
        let retries = *self
            .retries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok((accepted, rejected, retries))
    }
}

/// Sends until an answer that is not a transport error or a 5xx; None when stopping
/// gave up on it after 60 s of failures.
async fn retry<F, Fut>(
    retries: &Mutex<u64>,
    stop: &CancellationToken,
    send: F,
) -> Option<(u16, String)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let started = Instant::now();
    loop {
        match send().await {
            Ok(response) if response.status().as_u16() < 500 => {
                let status = response.status().as_u16();
                return Some((status, response.text().await.unwrap_or_default()));
            }
            _ => {
                if let Ok(mut r) = retries.lock() {
                    *r += 1;
                }
                if stop.is_cancelled() && started.elapsed() > Duration::from_secs(60) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub fn checkout_body(session: &str) -> Value {
    json!({
        "sessionId": session,
        "customerInfo": {"name": "Chaos Customer", "email": "chaos@example.com", "phone": "+14155551234",
            "shippingAddress": {"street": "1 Main St", "city": "Springfield", "state": "CA",
                "postalCode": "94105", "country": "USA"}}
    })
}

pub async fn manager_token(customer_base: &str) -> anyhow::Result<String> {
    let login: Value = reqwest::Client::new()
        .post(format!("{customer_base}/api/v1/auth/login"))
        .json(&json!({"username": "manager", "password": "manager123"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(login["accessToken"]
        .as_str()
        .context("no accessToken")?
        .to_owned())
}

/// Creates a category and `n` products with `stock` units each; returns their ids.
pub async fn create_products(
    customer_base: &str,
    n: usize,
    stock: u32,
) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let token = manager_token(customer_base).await?;
    let run = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let category: Value = http
        .post(format!("{customer_base}/api/v1/categories"))
        .bearer_auth(&token)
        .json(&json!({"name": format!("Chaos {run}")}))
        .send()
        .await?
        .json()
        .await?;
    let category_id = category["id"]
        .as_str()
        .context("no category id")?
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..n {
        let product: Value = http
            .post(format!("{customer_base}/api/v1/products"))
            .bearer_auth(&token)
            .json(&json!({"sku": format!("CH-{}-{i}", &run[..10]), "name": format!("Chaos {i}"), "price": 12.5,
                          "inventoryQuantity": stock, "categoryId": category_id}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(product["id"].as_str().context("no product id")?.to_owned());
    }
    Ok(ids)
}

/// What the books say after a run.
#[derive(Debug, Default)]
pub struct Books {
    pub checkouts: usize,
    pub orders: usize,
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    pub unfinished: Vec<(String, String)>,
    /// Orders FAILED with a reason (a declined payment): balanced, but counted.
    pub failed: Vec<String>,
    pub failed_without_reason: Vec<String>,
    pub double_charged: Vec<String>,
    pub negative_stock: i64,
}

impl Books {
    pub fn assert_balanced(&self) {
        assert!(self.missing.is_empty(), "lost orders: {:?}", self.missing);
        assert!(
            self.duplicated.is_empty(),
            "duplicated orders: {:?}",
            self.duplicated
        );
        assert!(
            self.unfinished.is_empty(),
            "orders neither PAID nor FAILED: {:?}",
            self.unfinished
        );
        assert!(
            self.failed_without_reason.is_empty(),
            "FAILED without reason: {:?}",
            self.failed_without_reason
        );
        assert!(
            self.double_charged.is_empty(),
            "charged twice: {:?}",
            self.double_charged
        );
        assert_eq!(self.negative_stock, 0, "products with negative stock");
    }
}

/// Waits until every accepted checkout's order is PAID or FAILED (or `timeout`), then
/// checks the databases and the gateway's ledger.
pub async fn check_books(
    platform: &Platform,
    accepted: &[Checkout],
    timeout: Duration,
) -> anyhow::Result<Books> {
    let customer = sqlx::PgPool::connect(&platform.customer_db).await?;
    let order = sqlx::PgPool::connect(&platform.order_db).await?;
    let numbers: HashSet<String> = accepted.iter().map(|c| c.order_number.clone()).collect();
    let deadline = Instant::now() + timeout;
    let mut books;
    loop {
        books = Books {
            checkouts: numbers.len(),
            ..Books::default()
        };
        let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT o.order_number, o.status::text, p.failure_reason, count(*) OVER (PARTITION BY o.order_number)
             FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id",
        )
        .fetch_all(&order)
        .await?;
        let by_number: HashMap<&str, (&str, Option<&str>, i64)> = rows
            .iter()
            .map(|(n, s, r, c)| (n.as_str(), (s.as_str(), r.as_deref(), *c)))
            .collect();
        books.orders = by_number.len();
        for number in &numbers {
            match by_number.get(number.as_str()) {
                None => books.missing.push(number.clone()),
                Some((_, _, count)) if *count > 1 => books.duplicated.push(number.clone()),
                Some((status, reason, _)) => match *status {
                    "PAID" => {}
                    "FAILED" if reason.is_some_and(|r| !r.is_empty()) => {
                        books.failed.push(number.clone())
                    }
                    "FAILED" => books.failed_without_reason.push(number.clone()),
                    other => books.unfinished.push((number.clone(), other.to_owned())),
                },
            }
        }
        if (books.missing.is_empty() && books.unfinished.is_empty()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every checkout in customer_db is an order the platform owes; none may be missing.
    let outbox_numbers: Vec<(String,)> =
        sqlx::query_as("SELECT payload->>'orderNumber' FROM order_created_outbox")
            .fetch_all(&customer)
            .await?;
    let order_numbers: HashSet<String> =
        sqlx::query_as::<_, (String,)>("SELECT order_number FROM orders")
            .fetch_all(&order)
            .await?
            .into_iter()
            .map(|(n,)| n)
            .collect();
    for (number,) in outbox_numbers {
        if !order_numbers.contains(&number) && !books.missing.contains(&number) {
            books.missing.push(number);
        }
    }
    books.negative_stock =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM products WHERE inventory_quantity < 0")
            .fetch_one(&customer)
            .await?;
    // The ledger: each order charged (successfully) at most once. The gateway knows an
    // order by the checkout's order id (ADR 0007), not by order_db's row id.
    let ids: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT source_order_id, order_number FROM orders")
            .fetch_all(&order)
            .await?;
    let http = reqwest::Client::new();
    for (id, number) in ids {
        let ledger: Value = http
            .get(format!(
                "{}/api/v1/payments?orderId={id}",
                platform.gateway.url()
            ))
            .send()
            .await?
            .json()
            .await?;
        let charges = ledger_charges(&ledger);
        if charges > 1 {
            books.double_charged.push(number);
        }
    }
    Ok(books)
}

/// Successful charges in the gateway's ledger answer for one order.
fn ledger_charges(ledger: &Value) -> usize {
    let list = match ledger {
        Value::Array(items) => items.clone(),
        Value::Object(map) => map
            .get("payments")
            .or_else(|| map.get("content"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    list.iter()
        .filter(|p| matches!(p["status"].as_str(), Some("SUCCEEDED" | "SUCCESS")))
        .map(|p| p["chargeCount"].as_u64().unwrap_or(1) as usize)
        .sum()
}
