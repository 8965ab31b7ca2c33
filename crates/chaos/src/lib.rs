//! A harness that runs the platform as real processes, with private dependencies it can
//! break: its own broker (nisshi on a free port, durable SQLite storage), its own Redis
//! and payment gateway, fresh databases on the shared PostgreSQL and unique topic names.
//! A [`Load`] drives steady checkouts the way a real client does (retrying a failed
//! request with the same `Idempotency-Key`), [`Cancels`] cancels orders as a manager
//! would while it runs, and [`Books`] checks afterwards, by the checkout's order id
//! (`orders.source_order_id`), that nothing was lost, duplicated or charged twice, that
//! every order ended, that the gateway's ledger holds exactly the money the orders say
//! (the subtotal for a paid order, nothing for a failed or cancelled one), and that
//! every unit of stock a failed or cancelled order took came back exactly once.
//!
//! Binaries come from [`bin_dir`]. [`otlp`] is a trace receiver the services can export to
//! (pass the `OTEL_*` variables as overrides of [`Platform::start`]).

pub mod metric_names;
pub mod otlp;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
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

    /// Sets `--flag value` for the next start, replacing the flag's value if it has one.
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.args.len() => self.args[i + 1] = value.to_owned(),
            _ => self.args.extend([flag.to_owned(), value.to_owned()]),
        }
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

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// A second instance of the same command, logging to `<name>-<n>.log`; not started.
    pub fn replica(&self, n: usize) -> Self {
        let name = format!("{}-{n}", self.name);
        Self {
            log: self.log.with_file_name(format!("{name}.log")),
            name,
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            dir: self.dir.clone(),
            child: None,
        }
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

    /// Instance `n` of this service on a free port, against the same databases, broker
    /// topics and consumer group; not started.
    pub fn replica(&self, n: usize) -> anyhow::Result<Self> {
        let port = platform::testing::free_port()?;
        let mut process = self.process.replica(n);
        process.set_flag("--server-port", &port.to_string());
        Ok(Self { process, port })
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
    /// Further instances of the customer service ([`Platform::start_replicas`]).
    pub customer_replicas: Vec<Service>,
    /// Further instances of the order service, in the same consumer group.
    pub order_replicas: Vec<Service>,
    pub customer_db: String,
    pub order_db: String,
    /// The gateway's ledger (`payment_gateway_db` of this run): kept across a restart of
    /// the gateway.
    pub gateway_db: String,
    /// The gateway's admin token of this run: turns its fault knobs, reads its ledger.
    pub gateway_admin_token: String,
    /// The gateway's service token of this run, which the order service sends.
    pub gateway_service_token: String,
    pub orders_topic: String,
    pub payments_topic: String,
    pub released_topic: String,
    /// Stock each product was created with, by product id: what [`check_books`]
    /// counts the units against.
    initial_stock: Mutex<HashMap<uuid::Uuid, i64>>,
}

impl Platform {
    /// Starts everything and waits until the three services are ready. `overrides` are
    /// flag values by flag name, and `OTEL_*` variables, which every service is given.
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
        let bootstrap = format!("127.0.0.1:{broker_port}");
        let setting = |name: &str, default: String| -> String {
            overrides
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .unwrap_or(default)
        };
        // Unique unless overridden: the broker is this run's own, so a test that reads
        // series labelled with the real topic names (the monitoring test) can use them.
        let orders_topic = setting(
            "orders-created-topic",
            platform::testing::unique_name("orders_created"),
        );
        let payments_topic = setting(
            "payments-completed-topic",
            platform::testing::unique_name("payments_completed"),
        );
        let released_topic = setting(
            "orders-released-topic",
            platform::testing::unique_name("orders_released"),
        );

        // Credentials of this run only: the gateway trusts the order service and the
        // harness (as an operator), nobody else.
        let gateway_admin_token = format!("chaos-admin-{}", uuid::Uuid::new_v4().simple());
        let gateway_service_token = format!("chaos-service-{}", uuid::Uuid::new_v4().simple());
        let environment = ("ENVIRONMENT".to_owned(), "test".to_owned());
        let otel: Vec<(String, String)> = overrides
            .iter()
            .filter(|(k, _)| k.starts_with("OTEL_"))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
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
                [
                    environment.clone(),
                    (
                        "PAYMENT_GATEWAY_ADMIN_TOKEN".into(),
                        gateway_admin_token.clone(),
                    ),
                    (
                        "PAYMENT_GATEWAY_SERVICE_TOKEN".into(),
                        gateway_service_token.clone(),
                    ),
                ]
                .into_iter()
                .chain(otel.iter().cloned())
                .collect(),
                &dir,
            ),
            port: gateway_port,
        };
        let customer_port = platform::testing::free_port()?;
        let order_port = platform::testing::free_port()?;
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
                    "--orders-released-topic".into(),
                    released_topic.clone(),
                    "--redis-port".into(),
                    redis_port.to_string(),
                    "--outbox-max-age-secs".into(),
                    setting("outbox-max-age-secs", "21600".into()),
                    "--order-service-url".into(),
                    format!("http://127.0.0.1:{order_port}"),
                    // Every test client is 127.0.0.1 and tests poll the lookup while
                    // orders are paid; the limit itself is tested by the services.
                    "--order-lookup-burst".into(),
                    setting("order-lookup-burst", "1000000".into()),
                ],
                [environment.clone()]
                    .into_iter()
                    .chain(otel.iter().cloned())
                    .collect(),
                &dir,
            ),
            port: customer_port,
        };
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
                    "--orders-released-topic".into(),
                    released_topic.clone(),
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
                    // The production default (15 min) is longer than any test; a test
                    // that needs payments to expire passes a few seconds.
                    "--payment-deadline-secs".into(),
                    setting("payment-deadline-secs", "900".into()),
                    "--customer-service-url".into(),
                    format!("http://127.0.0.1:{customer_port}"),
                    "--order-lookup-burst".into(),
                    setting("order-lookup-burst", "1000000".into()),
                ],
                [
                    environment,
                    (
                        "ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN".into(),
                        gateway_service_token.clone(),
                    ),
                ]
                .into_iter()
                .chain(otel)
                .collect(),
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
            customer_replicas: Vec::new(),
            order_replicas: Vec::new(),
            customer_db,
            order_db,
            gateway_db,
            gateway_admin_token,
            gateway_service_token,
            orders_topic,
            payments_topic,
            released_topic,
            initial_stock: Mutex::new(HashMap::new()),
        };
        platform.gateway.start().await?;
        platform.customer.start().await?;
        platform.order.start().await?;
        Ok(platform)
    }

    /// Starts instance 2 of the customer and of the order service beside the first ones:
    /// a [`Load`] started afterwards sends checkouts to both customer instances, and the
    /// two order instances share the partitions of `orders.created`.
    pub async fn start_replicas(&mut self) -> anyhow::Result<()> {
        let mut customer = self.customer.replica(2)?;
        customer.start().await?;
        self.customer_replicas.push(customer);
        let mut order = self.order.replica(2)?;
        order.start().await?;
        self.order_replicas.push(order);
        Ok(())
    }

    /// The base URL of every customer-service instance, the first one first.
    pub fn customer_urls(&self) -> Vec<String> {
        std::iter::once(&self.customer)
            .chain(&self.customer_replicas)
            .map(Service::url)
            .collect()
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
            .bearer_auth(&self.gateway_admin_token)
            .json(&faults)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("setting gateway faults failed: {}", response.status());
        }
        Ok(())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        for replica in self
            .order_replicas
            .iter_mut()
            .chain(&mut self.customer_replicas)
        {
            replica.process.stop().await?;
        }
        self.order.process.stop().await?;
        self.customer.process.stop().await?;
        self.gateway.process.stop().await?;
        self.broker.kill9().await?;
        self.redis.kill9().await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        // Only a run that got this far drops its databases: a failed test keeps them
        // for whoever reads its books.
        for url in [&self.customer_db, &self.order_db, &self.gateway_db] {
            drop_database(url).await?;
        }
        Ok(())
    }

    /// Creates `n` products with `stock` units each and remembers their stock for
    /// [`check_books`]; returns their ids.
    pub async fn create_products(&self, n: usize, stock: u32) -> anyhow::Result<Vec<String>> {
        let ids = create_products(&self.customer.url(), n, stock).await?;
        let mut initial = self
            .initial_stock
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        for id in &ids {
            initial.insert(id.parse()?, i64::from(stock));
        }
        Ok(ids)
    }

    /// Cancels an order as a manager (`POST /api/v1/orders/{n}/cancel`); returns the
    /// status and body of the answer, or None when the order service did not answer.
    pub async fn cancel(&self, token: &str, order_number: &str) -> Option<(u16, Value)> {
        cancel_order(
            &reqwest::Client::new(),
            &self.order.url(),
            token,
            order_number,
        )
        .await
    }

    /// Order status and payment status of every order in `order_db`, by order number.
    pub async fn order_states(&self) -> anyhow::Result<HashMap<String, (String, Option<String>)>> {
        let pool = sqlx::PgPool::connect(&self.order_db).await?;
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT o.order_number, o.status::text, p.status::text
             FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id",
        )
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        Ok(rows.into_iter().map(|(n, s, p)| (n, (s, p))).collect())
    }
}

/// Drops a database this harness created (`chaos_<32 hex>`), closing its connections.
async fn drop_database(url: &str) -> anyhow::Result<()> {
    use sqlx::ConnectOptions as _;
    use std::str::FromStr as _;
    let Some((_, name)) = url.rsplit_once('/') else {
        return Ok(());
    };
    // A name we did not make is never dropped, whatever the URL says.
    if !name.starts_with("chaos_") || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(());
    }
    let mut connection =
        sqlx::postgres::PgConnectOptions::from_str(&platform::testing::server_url())?
            .connect()
            .await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut connection)
        .await?;
    Ok(())
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
/// The clients are spread over every customer-service instance, and one whose instance
/// fails moves on to the next.
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
        platform: &Platform,
        customers: usize,
        products: usize,
        stock: u32,
    ) -> anyhow::Result<Self> {
        let bases = Arc::new(platform.customer_urls());
        let product_ids = Arc::new(platform.create_products(products, stock).await?);
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
            let bases = bases.clone();
            handles.push(tokio::spawn(async move {
                let mut at = customer % bases.len();
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
                    let status = retry(&retries, &stop, &bases, &mut at, |base| {
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
                    let result = retry(&retries, &stop, &bases, &mut at, |base| {
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

/// Sends to `bases[*at]` until an answer that is not a transport error or a 5xx, moving
/// on to the next base after each failure; None when stopping gave up on it after 60 s
/// of failures.
async fn retry<F, Fut>(
    retries: &Mutex<u64>,
    stop: &CancellationToken,
    bases: &[String],
    at: &mut usize,
    send: F,
) -> Option<(u16, String)>
where
    F: Fn(&str) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let started = Instant::now();
    loop {
        match send(&bases[*at]).await {
            Ok(response) if response.status().as_u16() < 500 => {
                let status = response.status().as_u16();
                return Some((status, response.text().await.unwrap_or_default()));
            }
            _ => {
                if let Ok(mut r) = retries.lock() {
                    *r += 1;
                }
                *at = (*at + 1) % bases.len();
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

/// The reason every cancel of this harness gives.
pub const CANCEL_REASON: &str = "chaos: the customer changed their mind";

async fn cancel_order(
    http: &reqwest::Client,
    order_base: &str,
    token: &str,
    order_number: &str,
) -> Option<(u16, Value)> {
    let response = http
        .post(format!("{order_base}/api/v1/orders/{order_number}/cancel"))
        .bearer_auth(token)
        .json(&json!({ "reason": CANCEL_REASON }))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    // A body that is not JSON is kept as a string: it is only ever printed.
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Some((status, body))
}

/// What a run of [`Cancels`] did.
#[derive(Debug, Default, Clone)]
pub struct CancelTally {
    /// Orders cancelled before they were paid (the answer's `paymentStatus` is not
    /// `SUCCESS`/`REFUNDED`): their stock comes back, nothing is charged.
    pub before_payment: Vec<String>,
    /// Orders cancelled after they were paid: a refund was requested.
    pub after_payment: Vec<String>,
    /// Refusals by status: 404 (not arrived yet), 409 (already ended, or a payment call
    /// in flight). All expected under load.
    pub refused: BTreeMap<u16, usize>,
    /// Requests that got no answer: the order service was down.
    pub unanswered: usize,
    /// 5xx answers: never expected.
    pub server_errors: Vec<(String, u16, Value)>,
    /// Ticks run, and how long the cancel requests took in all.
    pub ticks: u64,
    pub busy: Duration,
    pub querying: Duration,
}

/// A manager cancelling orders while a [`Load`] runs: on every tick one that waits for
/// its payment (`PENDING`/`PROCESSING` with no gateway call in flight, so the cancel is
/// allowed) if there is one, and on every other tick one that is `PAID` (so it is
/// refunded); each picked at random from `order_db` and tried once.
pub struct Cancels {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<CancelTally>>,
}

impl Cancels {
    /// Starts cancelling, one order every `every`.
    pub async fn start(platform: &Platform, every: Duration) -> anyhow::Result<Self> {
        let token = manager_token(&platform.customer.url()).await?;
        let order_base = platform.order.url();
        let pool = sqlx::PgPool::connect(&platform.order_db).await?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tally = CancelTally::default();
            let mut tried: HashSet<String> = HashSet::new();
            for tick in 0u64.. {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
                // A waiting order whenever there is one (they are rare: only while the
                // gateway is not answering), a paid one every other tick.
                let mut picks = Vec::new();
                let querying = Instant::now();
                for unpaid in [true, false] {
                    if !unpaid && tick % 2 == 1 {
                        continue;
                    }
                    // order_db may be briefly unreachable: then there is nothing to pick.
                    let candidates: Vec<String> = sqlx::query_scalar(if unpaid {
                        "SELECT o.order_number FROM orders o JOIN payment_transactions p ON p.order_id = o.id
                         WHERE o.status IN ('PENDING', 'PROCESSING')
                           AND (p.locked_until IS NULL OR p.locked_until < now() AT TIME ZONE 'UTC')"
                    } else {
                        "SELECT order_number FROM orders WHERE status = 'PAID'"
                    })
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|n| !tried.contains(n))
                    .collect();
                    if candidates.is_empty() {
                        continue;
                    }
                    let index =
                        (uuid::Uuid::new_v4().as_u128() % candidates.len() as u128) as usize;
                    tried.insert(candidates[index].clone());
                    picks.push(candidates[index].clone());
                }
                tally.ticks = tick + 1;
                tally.querying += querying.elapsed();
                for number in picks {
                    let started = Instant::now();
                    let answer = cancel_order(&http, &order_base, &token, &number).await;
                    tally.busy += started.elapsed();
                    match answer {
                        None => tally.unanswered += 1,
                        Some((200, body)) => {
                            if matches!(
                                body["paymentStatus"].as_str(),
                                Some("SUCCESS" | "REFUNDED")
                            ) {
                                tally.after_payment.push(number);
                            } else {
                                tally.before_payment.push(number);
                            }
                        }
                        Some((status, body)) if status >= 500 => {
                            tally.server_errors.push((number, status, body));
                        }
                        Some((status, _)) => *tally.refused.entry(status).or_default() += 1,
                    }
                }
            }
            pool.close().await;
            Ok(tally)
        });
        Ok(Self { stop, handle })
    }

    /// Stops cancelling (a cancel in flight finishes first) and says what was done.
    pub async fn stop(self) -> anyhow::Result<CancelTally> {
        self.stop.cancel();
        self.handle.await?
    }
}

/// Short gateway outages while a test runs: every `every`, the gateway answers 503 to
/// everything for `length`, so payments wait for the retry worker (and can be cancelled
/// before they are paid) and refunds are retried. Every change also sets `faults`, so a
/// restarted gateway gets them back; a gateway that is down is skipped.
pub struct GatewayBlips {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl GatewayBlips {
    pub fn start(platform: &Platform, faults: Value, every: Duration, length: Duration) -> Self {
        let url = format!("{}/admin/faults", platform.gateway.url());
        let token = platform.gateway_admin_token.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let set = |error: Option<u16>| {
                let mut body = faults.clone();
                body["errorStatus"] = json!(error);
                // A dead gateway misses this change; the next one reaches it.
                let request = http
                    .put(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send();
                async move {
                    let _ = request.await;
                }
            };
            // An outage first, so that a test sees one however short it is.
            loop {
                set(Some(503)).await;
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(length) => {}
                }
                set(None).await;
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
            set(None).await;
        });
        Self { stop, handle }
    }

    /// Ends the outages and leaves the gateway answering with `faults`.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(self.handle.await?)
    }
}

/// What the books say after a run, by the checkout's order id: the per-order checks
/// of this harness (every accepted checkout ended, units add up) plus the findings of
/// `opsctl reconcile` (money in the ledger, refunds, `stock_returns` rows).
#[derive(Debug, Default)]
pub struct Books {
    pub checkouts: usize,
    pub orders: usize,
    /// Accepted checkouts with no order, and checkouts in `customer_db` with none.
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    /// Orders not in an end state (`PAID`, `FULFILLED`, `FAILED`, `CANCELLED`).
    pub unfinished: Vec<(String, String)>,
    /// Orders `PAID` or `FULFILLED`.
    pub paid: usize,
    /// Orders `CANCELLED`: an accepted end, counted.
    pub cancelled: Vec<String>,
    /// Orders `FAILED` with a reason (a decline, the payment deadline), and the reason.
    pub failed: Vec<(String, String)>,
    pub failed_without_reason: Vec<String>,
    /// `FAILED`/`CANCELLED` orders whose payment is still `SUCCESS`: refund not done.
    pub refund_pending: Vec<String>,
    /// Products whose inventory is not their initial stock less the units of the orders
    /// that kept theirs (0 units lost or returned twice): product id, expected, actual.
    pub stock_mismatch: Vec<(String, i64, i64)>,
    pub negative_stock: i64,
    /// Findings of `opsctl reconcile` with no grace period: double charges, a net charge
    /// that is not the subtotal of a paid order or zero for a failed or cancelled one,
    /// refunds not done, money for no order, a failed or cancelled order without exactly
    /// one `stock_returns` row, a row for an order that kept its stock.
    pub reconcile: Vec<opsctl::reconcile::Finding>,
    /// What `opsctl reconcile` could not check (a table or API missing): must be none.
    pub reconcile_notes: Vec<String>,
}

impl Books {
    /// Everything adds up.
    pub fn is_balanced(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unfinished.is_empty()
            && self.failed_without_reason.is_empty()
            && self.refund_pending.is_empty()
            && self.stock_mismatch.is_empty()
            && self.negative_stock == 0
            && self.reconcile.is_empty()
            && self.reconcile_notes.is_empty()
    }

    pub fn assert_balanced(&self) {
        assert!(self.missing.is_empty(), "lost orders: {:?}", self.missing);
        assert!(
            self.duplicated.is_empty(),
            "duplicated orders: {:?}",
            self.duplicated
        );
        assert!(
            self.unfinished.is_empty(),
            "orders neither PAID nor FAILED nor CANCELLED: {:?}",
            self.unfinished
        );
        assert!(
            self.failed_without_reason.is_empty(),
            "FAILED without reason: {:?}",
            self.failed_without_reason
        );
        assert!(
            self.refund_pending.is_empty(),
            "failed or cancelled orders whose payment was never refunded: {:?}",
            self.refund_pending
        );
        assert!(
            self.stock_mismatch.is_empty(),
            "units lost or returned twice (product, expected, actual): {:?}",
            self.stock_mismatch
        );
        assert_eq!(self.negative_stock, 0, "products with negative stock");
        assert!(
            self.reconcile_notes.is_empty(),
            "reconciliation could not check everything: {:?}",
            self.reconcile_notes
        );
        assert!(
            self.reconcile.is_empty(),
            "reconciliation found: {:#?}",
            self.reconcile
        );
    }
}

/// An order as `order_db` has it, with its payment; `id` is the checkout's order id.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: uuid::Uuid,
    number: String,
    status: String,
    payment_status: Option<String>,
    failure_reason: Option<String>,
    payments: i64,
}

/// Waits until the books balance (every accepted checkout's order ended, refunds done,
/// stock back) or `timeout` passed, then returns them as last read: `customer_db`,
/// `order_db` and the gateway's ledger, joined by the checkout's order id.
pub async fn check_books(
    platform: &Platform,
    accepted: &[Checkout],
    timeout: Duration,
) -> anyhow::Result<Books> {
    let customer = sqlx::PgPool::connect(&platform.customer_db).await?;
    let order = sqlx::PgPool::connect(&platform.order_db).await?;
    let deadline = Instant::now() + timeout;
    let books = loop {
        let books = read_books(platform, &customer, &order, accepted).await?;
        if books.is_balanced() || Instant::now() > deadline {
            break books;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    customer.close().await;
    order.close().await;
    Ok(books)
}

async fn read_books(
    platform: &Platform,
    customer: &sqlx::PgPool,
    order: &sqlx::PgPool,
    accepted: &[Checkout],
) -> anyhow::Result<Books> {
    let numbers: HashSet<&str> = accepted.iter().map(|c| c.order_number.as_str()).collect();
    let mut books = Books {
        checkouts: numbers.len(),
        ..Books::default()
    };

    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT o.source_order_id AS id, o.order_number AS number, o.status::text AS status,
                p.status::text AS payment_status, p.failure_reason,
                count(p.id) OVER (PARTITION BY o.id) AS payments
         FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id",
    )
    .fetch_all(order)
    .await
    .context("reading orders from order_db")?;
    let mut by_id: HashMap<uuid::Uuid, OrderRow> = HashMap::new();
    let mut by_number: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    for row in rows {
        by_number
            .entry(row.number.clone())
            .or_default()
            .push(row.id);
        by_id.insert(row.id, row);
    }
    books.orders = by_id.len();
    let released = |status: &str| matches!(status, "FAILED" | "CANCELLED");

    // Every accepted checkout has exactly one order, in an end state.
    for number in &numbers {
        let ids = by_number
            .get(*number)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [id] = ids else {
            if ids.is_empty() {
                books.missing.push((*number).to_owned());
            } else {
                books.duplicated.push((*number).to_owned());
            }
            continue;
        };
        let Some(row) = by_id.get(id) else { continue };
        if row.payments > 1 {
            books.duplicated.push(row.number.clone());
            continue;
        }
        match row.status.as_str() {
            "PAID" | "FULFILLED" => books.paid += 1,
            "CANCELLED" => books.cancelled.push(row.number.clone()),
            "FAILED" => match row.failure_reason.as_deref() {
                Some(reason) if !reason.is_empty() => {
                    books.failed.push((row.number.clone(), reason.to_owned()))
                }
                _ => books.failed_without_reason.push(row.number.clone()),
            },
            other => books
                .unfinished
                .push((row.number.clone(), other.to_owned())),
        }
    }

    // Every checkout in customer_db is an order the platform owes; none may be missing.
    let checkouts: Vec<(uuid::Uuid, Option<String>)> =
        sqlx::query_as("SELECT aggregate_id, payload->>'orderNumber' FROM order_created_outbox")
            .fetch_all(customer)
            .await
            .context("reading checkouts from customer_db")?;
    for (id, number) in &checkouts {
        let number = number.clone().unwrap_or_else(|| id.to_string());
        if !by_id.contains_key(id) && !books.missing.contains(&number) {
            books.missing.push(number);
        }
    }

    // Refunds: a released order's payment ends FAILED or REFUNDED, never SUCCESS.
    for row in by_id.values() {
        if released(&row.status) && row.payment_status.as_deref() == Some("SUCCESS") {
            books.refund_pending.push(row.number.clone());
        }
    }

    // Money, refunds and stock_returns rows: what an operator's reconcile checks, with
    // no grace period (this loop is the grace period). A pending refund is not balanced
    // yet either.
    let ledger = opsctl::reconcile::fetch_ledger(
        &platform.gateway.url(),
        Some(&platform.gateway_admin_token),
    )
    .await?;
    let args = opsctl::cli::ReconcileArgs {
        grace: Duration::ZERO,
        stuck_after: Duration::ZERO,
        window: Duration::from_secs(7 * 24 * 3600),
        no_ledger: false,
        repair: false,
    };
    let report = opsctl::reconcile::reconcile(customer, order, Some(&ledger), &args).await?;
    books.reconcile = report.findings;
    books.reconcile_notes = report.notes;

    // Units: initial stock less what the orders that kept their stock took. A checkout
    // with no order yet kept its units; a released order gave them back.
    let lines: Vec<(uuid::Uuid, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT o.aggregate_id, i->>'productId', (i->>'quantity')::bigint
         FROM order_created_outbox o CROSS JOIN LATERAL jsonb_array_elements(o.payload->'items') i",
    )
    .fetch_all(customer)
    .await
    .context("reading checkout lines from customer_db")?;
    let mut kept: HashMap<uuid::Uuid, i64> = HashMap::new();
    for (order_id, product, quantity) in lines {
        if by_id
            .get(&order_id)
            .is_some_and(|row| released(&row.status))
        {
            continue;
        }
        let product = product
            .as_deref()
            .and_then(|p| p.parse().ok())
            .context("a checkout line without a product id")?;
        *kept.entry(product).or_default() += quantity.unwrap_or(0);
    }
    let inventory: HashMap<uuid::Uuid, i64> =
        sqlx::query_as::<_, (uuid::Uuid, i32)>("SELECT id, inventory_quantity FROM products")
            .fetch_all(customer)
            .await?
            .into_iter()
            .map(|(id, quantity)| (id, i64::from(quantity)))
            .collect();
    let initial = platform
        .initial_stock
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    for (product, stock) in initial {
        let expected = stock - kept.get(&product).copied().unwrap_or(0);
        let actual = inventory.get(&product).copied().unwrap_or(-1);
        if actual != expected {
            books
                .stock_mismatch
                .push((product.to_string(), expected, actual));
        }
    }
    books.negative_stock = inventory.values().filter(|q| **q < 0).count() as i64;
    Ok(books)
}
