//! The benchmark's load generator.
//!
//! Each scenario runs a warm-up, then measures for a fixed duration with a fixed number
//! of concurrent workers (closed loop), or at a fixed arrival rate (`e2e`), and prints
//! one JSON object: throughput and latency percentiles. `scripts/bench.sh` runs the
//! scenarios against the platform and against `trivial-server` (the ceiling of this
//! machine for the same load tool) and tabulates the ratios.
//!
//! - `browse`: `GET /api/v1/products` and `GET /api/v1/products/{id}`, alternating.
//! - `checkout`: add to cart, then check out with a fresh `Idempotency-Key`.
//! - `e2e`: checkouts at a steady rate; time from the checkout response until the
//!   order reads `PAID` on the order service, or, with `--order-db`, until a watcher
//!   that reads `order_db` every 5 ms sees it committed PAID.
//! - `trivial`: `GET /` against `trivial-server`.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Parser)]
#[command(about = "Load generator for the platform's benchmark")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Catalogue reads at a fixed concurrency.
    Browse(Closed),
    /// Cart add + checkout at a fixed concurrency.
    Checkout(Closed),
    /// Checkout-to-PAID latency at a fixed rate.
    E2e(Open),
    /// Checkouts (cart add + checkout) started at a fixed rate, whatever the answers'
    /// pace; measures the checkouts. Whether the order service keeps up is for the
    /// caller to watch (consumer lag, unfinished orders).
    Pace(Open),
    /// `GET /` against a trivial server at a fixed concurrency.
    Trivial(Closed),
    /// Serves `GET /` with a constant body, the ceiling for `trivial`.
    TrivialServer {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Customer-facing service (or trivial server) base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Order service base URL (e2e).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    order_base: String,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

#[derive(Args, Clone)]
struct Closed {
    #[command(flatten)]
    common: Common,
    /// Concurrent workers, each with its own connection.
    #[arg(long, default_value_t = 64)]
    connections: usize,
}

#[derive(Args, Clone)]
struct Open {
    #[command(flatten)]
    common: Common,
    /// Checkouts started per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// e2e: the order service's database. One watcher reads it every 5 ms for orders
    /// that ended, instead of every journey asking the order service every 5 ms, so
    /// measuring costs the platform one small query per 5 ms whatever the rate,
    /// not thousands of HTTP lookups a second.
    #[arg(long)]
    order_db: Option<String>,
}

/// What one scenario measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub operations: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Report {
    fn new(
        scenario: &str,
        concurrency: usize,
        elapsed: Duration,
        mut latencies: Vec<Duration>,
        errors: u64,
    ) -> Self {
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let index =
                ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index].as_secs_f64() * 1000.0
        };
        let seconds = elapsed.as_secs_f64();
        Self {
            scenario: scenario.to_owned(),
            concurrency,
            seconds,
            operations: latencies.len() as u64,
            errors,
            per_second: latencies.len() as f64 / seconds.max(f64::EPSILON),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            p999_ms: pct(0.999),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.scenario)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(scenario: Scenario) -> anyhow::Result<()> {
    let report = match scenario {
        Scenario::TrivialServer { port } => return trivial_server(port).await,
        Scenario::Trivial(c) => {
            let url = format!("{}/", c.common.base);
            closed_loop("trivial", &c, move |client, _| {
                let url = url.clone();
                async move { read_ok(client.get(&url).send().await?).await }
            })
            .await?
        }
        Scenario::Browse(c) => {
            let fixture = Fixture::create(&c.common.base, 20, 1_000_000).await?;
            let base = c.common.base.clone();
            let ids = Arc::new(fixture.product_ids);
            closed_loop("browse", &c, move |client, i| {
                let url = if i % 2 == 0 {
                    format!("{base}/api/v1/products?page=0&size=20")
                } else {
                    format!("{base}/api/v1/products/{}", ids[i % ids.len()])
                };
                async move { read_ok(client.get(&url).send().await?).await }
            })
            .await?
        }
        Scenario::Checkout(c) => {
            let fixture = Arc::new(Fixture::create(&c.common.base, 50, 100_000_000).await?);
            let base = c.common.base.clone();
            closed_loop("checkout", &c, move |client, i| {
                let fixture = fixture.clone();
                let base = base.clone();
                async move { checkout(&client, &base, &fixture, i).await.map(|_| ()) }
            })
            .await?
        }
        Scenario::E2e(o) => e2e(&o).await?,
        Scenario::Pace(o) => pace(&o).await?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Reads a whole successful response, as wrk would: the measured scenarios (trivial and
/// browse) pay the same client cost per byte, and none for parsing, which would tax the
/// larger catalogue answers on the cores the service shares with the load generator.
async fn read_ok(response: reqwest::Response) -> anyhow::Result<()> {
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// A successful response's JSON body (the fixtures and journeys need its ids).
async fn expect_ok(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("http client")
}

/// Runs `connections` workers, each repeating `op` on its own connection, through the
/// warm-up and then for the measured duration.
async fn closed_loop<F, Fut>(name: &str, c: &Closed, op: F) -> anyhow::Result<Report>
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let warmup_end = started + Duration::from_secs(c.common.warmup);
    let end = warmup_end + Duration::from_secs(c.common.duration);
    let mut workers = Vec::new();
    for worker in 0..c.connections {
        let op = op.clone();
        let client = client()?;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = worker;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let result = op(client.clone(), i).await;
                i += 1;
                if t0 < warmup_end {
                    continue;
                }
                match result {
                    Ok(()) => latencies.push(t0.elapsed()),
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("first error of worker {worker}: {e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    let measured = Instant::now().saturating_duration_since(warmup_end.min(Instant::now()));
    Ok(Report::new(
        name,
        c.connections,
        measured
            .min(Duration::from_secs(c.common.duration))
            .max(Duration::from_millis(1)),
        latencies,
        errors,
    ))
}

/// A category and products with plenty of stock, created through the manager API.
struct Fixture {
    product_ids: Vec<String>,
    /// The manager's token, which the e2e journeys poll their orders with: anonymous
    /// lookups are limited per client address, and every journey here is one client.
    token: String,
}

impl Fixture {
    async fn create(base: &str, products: usize, stock: u64) -> anyhow::Result<Self> {
        let http = client()?;
        let login = expect_ok(
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": "manager", "password": "manager123"}))
                .send()
                .await?,
        )
        .await
        .context("manager login")?;
        let token = login["accessToken"]
            .as_str()
            .context("no accessToken")?
            .to_owned();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let category = expect_ok(
            http.post(format!("{base}/api/v1/categories"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("Bench {run}")}))
                .send()
                .await?,
        )
        .await
        .context("create category")?;
        let category_id = category["id"]
            .as_str()
            .context("no category id")?
            .to_owned();
        let mut product_ids = Vec::new();
        for i in 0..products {
            let product = expect_ok(
                http.post(format!("{base}/api/v1/products"))
                    .bearer_auth(&token)
                    .json(&json!({
                        "sku": format!("BENCH-{}-{i}", &run[..12].to_uppercase()),
                        "name": format!("Bench product {i}"),
                        "description": "benchmark fixture",
                        "price": 9.99,
                        "inventoryQuantity": stock,
                        "categoryId": category_id,
                    }))
                    .send()
                    .await?,
            )
            .await
            .context("create product")?;
            product_ids.push(product["id"].as_str().context("no product id")?.to_owned());
        }
        Ok(Self { product_ids, token })
    }
}

/// One customer journey: add a product to a fresh cart and check out. Returns the
/// order number.
async fn checkout(
    client: &reqwest::Client,
    base: &str,
    fixture: &Fixture,
    i: usize,
) -> anyhow::Result<String> {
    let session = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let product = &fixture.product_ids[i % fixture.product_ids.len()];
    expect_ok(
        client
            .post(format!("{base}/api/v1/carts/{session}/items"))
            .json(&json!({"productId": product, "quantity": 1}))
            .send()
            .await?,
    )
    .await?;
    let order = expect_ok(
        client
            .post(format!("{base}/api/v1/checkout"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({
                "sessionId": session,
                "customerInfo": {"name": "Bench Customer", "email": "bench@example.com", "phone": "+14155551234",
                    "shippingAddress": {"street": "1 Main St", "city": "Springfield", "state": "CA",
                        "postalCode": "94105", "country": "USA"}}
            }))
            .send()
            .await?,
    )
    .await?;
    Ok(order["orderNumber"]
        .as_str()
        .context("no orderNumber")?
        .to_owned())
}

/// When a journey first asks the order service for its order: no order can be PAID
/// sooner than the payment gateway's default 20 ms answer, and earlier polls would
/// only load the service being measured. (A faster gateway would be measured as 20 ms:
/// the error is never in the platform's favour.)
const FIRST_POLL: Duration = Duration::from_millis(20);
/// How often it asks after that, while the answer could still fall inside the latency
/// target: every poll rounds the measurement up by up to this much. Past
/// [`FINE_POLLING_FOR`] it asks every [`POLL_INTERVAL_SLOW`], so slow orders cannot
/// make waiting clients flood the service they wait for.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
const FINE_POLLING_FOR: Duration = Duration::from_millis(250);
const POLL_INTERVAL_SLOW: Duration = Duration::from_millis(50);

/// What one journey of an open-loop scenario gets: the fixture, the two base URLs and
/// one shared client (so a journey that polls opens no new connection per poll).
#[derive(Clone)]
struct Journey {
    fixture: Arc<Fixture>,
    base: String,
    order_base: String,
    http: reqwest::Client,
}

/// Starts `journey` `o.rate` times a second for the warm-up and the measured time, and
/// reports the measured journeys' durations. `missed` says what a late tick does:
/// `Burst` keeps the arrivals' rate whatever the answers' pace, `Delay` spaces them.
async fn open_loop<F, Fut>(
    o: &Open,
    scenario: &str,
    missed: tokio::time::MissedTickBehavior,
    journey: F,
) -> anyhow::Result<Report>
where
    F: Fn(Journey, usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send + 'static,
{
    let base = o.common.base.clone();
    let context = Journey {
        fixture: Arc::new(Fixture::create(&base, 50, 100_000_000).await?),
        base,
        order_base: o.common.order_base.clone(),
        http: reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("http client")?,
    };
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(0.1));
    let warmup_end = Instant::now() + Duration::from_secs(o.common.warmup);
    let end = warmup_end + Duration::from_secs(o.common.duration);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(missed);
    let mut started = Vec::new();
    let mut i = 0usize;
    while Instant::now() < end {
        ticker.tick().await;
        let measured = Instant::now() >= warmup_end;
        i += 1;
        let run = journey(context.clone(), i);
        started.push(tokio::spawn(async move { (measured, run.await) }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in started {
        match handle.await? {
            (true, Ok(latency)) => latencies.push(latency),
            (false, Ok(_)) => {}
            (_, Err(e)) => {
                if errors == 0 {
                    eprintln!("first {scenario} error: {e:#}");
                }
                errors += 1;
            }
        }
    }
    Ok(Report::new(
        scenario,
        0,
        Duration::from_secs(o.common.duration),
        latencies,
        errors,
    ))
}

/// Checkouts started at a fixed rate (an open loop: a slow answer does not slow the
/// arrivals); each measures its cart add + checkout.
async fn pace(o: &Open) -> anyhow::Result<Report> {
    open_loop(
        o,
        "pace",
        tokio::time::MissedTickBehavior::Burst,
        |j, i| async move {
            let t0 = Instant::now();
            checkout(&j.http, &j.base, &j.fixture, i).await?;
            Ok(t0.elapsed())
        },
    )
    .await
}

/// Checkouts at a fixed rate; each measures checkout response → order PAID.
async fn e2e(o: &Open) -> anyhow::Result<Report> {
    if let Some(url) = &o.order_db {
        return e2e_watched(o, url).await;
    }
    open_loop(
        o,
        "e2e",
        tokio::time::MissedTickBehavior::Delay,
        |j, i| async move {
            let number = checkout(&j.http, &j.base, &j.fixture, i).await?;
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_secs(30);
            tokio::time::sleep(FIRST_POLL).await;
            loop {
                let response = j
                    .http
                    .get(format!("{}/api/v1/orders/{number}", j.order_base))
                    .bearer_auth(&j.fixture.token)
                    .send()
                    .await?;
                if response.status().is_success() {
                    let order: Value = response.json().await?;
                    match order["status"].as_str() {
                        Some("PAID") => return Ok(t0.elapsed()),
                        Some("FAILED") => bail!("order {number} FAILED"),
                        _ => {}
                    }
                }
                if Instant::now() > deadline {
                    bail!("order {number} not PAID within 30 s");
                }
                tokio::time::sleep(if t0.elapsed() < FINE_POLLING_FOR {
                    POLL_INTERVAL
                } else {
                    POLL_INTERVAL_SLOW
                })
                .await;
            }
        },
    )
    .await
}

/// Journeys waiting for their order to end, by order number: the watcher sends the
/// instant it saw the order committed PAID (or an error for any other end).
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<anyhow::Result<Instant>>>>>;

/// `e2e` with the watcher reading `order_db` (`--order-db`). Each latency runs from the
/// checkout response to the end of the watcher's first read that returns the order
/// PAID: the commit happened before that read, so the error is never in the platform's
/// favour (up to one 5 ms interval plus the read).
async fn e2e_watched(o: &Open, url: &str) -> anyhow::Result<Report> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("connecting to the order database (--order-db)")?;
    let waiting: Waiting = Arc::default();
    let watcher = tokio::spawn(watch_orders(pool, waiting.clone()));
    let report = open_loop(
        o,
        "e2e",
        tokio::time::MissedTickBehavior::Delay,
        move |j, i| {
            let waiting = waiting.clone();
            async move {
                let number = checkout(&j.http, &j.base, &j.fixture, i).await?;
                let t0 = Instant::now();
                let (tx, rx) = oneshot::channel();
                lock(&waiting).insert(number.clone(), tx);
                let Ok(seen) = tokio::time::timeout(Duration::from_secs(30), rx).await else {
                    lock(&waiting).remove(&number);
                    bail!("order {number} not PAID within 30 s");
                };
                Ok(seen
                    .context("the watcher stopped")??
                    .saturating_duration_since(t0))
            }
        },
    )
    .await;
    watcher.abort();
    report
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every [`POLL_INTERVAL`], one read of the waiting orders (by the unique order number,
/// so its cost follows how many wait, not how many orders exist): each that has ended
/// is answered with the instant the read returned.
async fn watch_orders(pool: sqlx::PgPool, waiting: Waiting) {
    loop {
        let numbers: Vec<String> = lock(&waiting).keys().cloned().collect();
        if !numbers.is_empty() {
            match sqlx::query_as::<_, (String, String)>(
                "SELECT order_number, status::text FROM orders \
                 WHERE order_number = ANY($1) AND status IN ('PAID', 'FAILED', 'CANCELLED')",
            )
            .bind(&numbers)
            .fetch_all(&pool)
            .await
            {
                Ok(rows) => {
                    let seen = Instant::now();
                    let mut waiting = lock(&waiting);
                    for (number, status) in rows {
                        if let Some(tx) = waiting.remove(&number) {
                            let _ = tx.send(ended(&number, &status, seen));
                        }
                    }
                }
                Err(e) => eprintln!("watching order_db: {e}"),
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn ended(number: &str, status: &str, seen: Instant) -> anyhow::Result<Instant> {
    match status {
        "PAID" => Ok(seen),
        other => bail!("order {number} ended {other}"),
    }
}

async fn trivial_server(port: u16) -> anyhow::Result<()> {
    let app =
        axum::Router::new().route("/", axum::routing::get(|| async { "{\"status\":\"UP\"}" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let latencies: Vec<Duration> = (1..=1000).rev().map(Duration::from_millis).collect();
        let report = Report::new("t", 1, Duration::from_secs(10), latencies, 2);
        assert_eq!(report.operations, 1000);
        assert_eq!(report.errors, 2);
        assert!((report.per_second - 100.0).abs() < 1e-9);
        assert!((report.p50_ms - 500.0).abs() < 1e-9);
        assert!((report.p99_ms - 990.0).abs() < 1e-9);
        assert!((report.p999_ms - 999.0).abs() < 1e-9);
        assert!((report.max_ms - 1000.0).abs() < 1e-9);
    }
}
