//! Alert drills: the platform's alerts seen going pending, firing, reaching Alertmanager
//! and resolving, with a real Prometheus and Alertmanager and a real fault as cause.
//!
//! The rules are `infrastructure/prometheus/alerts.yml` through ONE test overlay,
//! generated here by [`drill_overlay`] and never edited by hand: every `for:` duration
//! and every range window (`[5m]`) is divided by [`SPEED_UP`] (5m -> 20s, 1m -> 4s,
//! 15m -> 60s), with range windows kept at 2 s or more so `rate()` sees two scrapes.
//! Thresholds, expressions, labels and annotations are the production ones. Prometheus
//! scrapes and evaluates every second. The drill times printed (and copied into the
//! runbook's alert matrix) are therefore the overlay's: multiply a `for:`-dominated
//! figure by 15 for production.
//!
//! One platform start serves every drill, so the suite grows by one start plus the
//! drills' own time:
//! 1. the gateway answers 503 for every charge and refund (payment deadline 5 s):
//!    `PaymentCircuitBreakerOpen`, `HttpServerErrorSurge`, `PaymentsExpired` and
//!    `PaymentRefundsPendingTooLong`; then the gateway is healed;
//! 2. alongside, one undecodable record on `orders.released`: `DeadLetterMessages` and
//!    `StockReturnDeadLetters`;
//! 3. the broker down under checkouts: `OutboxBacklogHigh`; then the broker is back;
//! 4. the gateway failing 4 s out of every 8: `PaymentCircuitBreakerOscillating`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chaos::{GatewayBlips, Load, Platform, Process};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How much faster than production the overlay's durations run.
const SPEED_UP: u64 = 15;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

fn format_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The drill overlay of a rule file: `for:` and range windows divided by [`SPEED_UP`].
fn drill_overlay(rules: &str) -> String {
    let scale = |d: Duration, floor: Duration| (d / SPEED_UP as u32).max(floor);
    let mut out = String::new();
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if let Some(value) = trimmed.strip_prefix("for:") {
            if let Some(d) = parse_duration(value.trim()) {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!(
                    "{indent}for: {}\n",
                    format_duration(scale(d, Duration::ZERO))
                ));
                continue;
            }
        }
        // Range windows: `[5m]`, outside comments.
        let mut rewritten = String::new();
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']') else {
                break;
            };
            rewritten.push_str(&rest[..=open]);
            let inside = &rest[open + 1..open + close];
            match parse_duration(inside) {
                Some(d) if !trimmed.starts_with('#') => {
                    rewritten.push_str(&format_duration(scale(d, Duration::from_secs(2))))
                }
                _ => rewritten.push_str(inside),
            }
            rewritten.push(']');
            rest = &rest[open + close + 1..];
        }
        rewritten.push_str(rest);
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

#[test]
fn the_overlay_shortens_durations_and_windows_and_nothing_else() {
    let rules = "      # over [5m]\n      - alert: X\n        expr: rate(a_total[5m]) > 0 and max_over_time(b[1m]) > 0\n        for: 15m\n";
    assert_eq!(
        drill_overlay(rules),
        "      # over [5m]\n      - alert: X\n        expr: rate(a_total[20000ms]) > 0 and max_over_time(b[4000ms]) > 0\n        for: 60000ms\n"
    );
    let real =
        std::fs::read_to_string(root().join("infrastructure/prometheus/alerts.yml")).unwrap();
    let overlay = drill_overlay(&real);
    assert_eq!(real.lines().count(), overlay.lines().count());
    let code: Vec<&str> = overlay
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(code
        .iter()
        .all(|l| !l.contains("for: 5m") && !l.contains("[5m]")));
}

/// A private Prometheus (rules: the drill overlay) and Alertmanager.
struct Watch {
    prometheus: Process,
    alertmanager: Process,
    prometheus_url: String,
    alertmanager_url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

async fn wait_up(http: &reqwest::Client, url: &str, process: &Process) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "{} did not start:\n{}",
            process.name,
            process.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Watch {
    async fn start(targets: &[(&str, u16)]) -> Watch {
        let dir = std::env::temp_dir().join(platform::testing::unique_name("drills"));
        std::fs::create_dir_all(dir.join("prometheus")).unwrap();
        std::fs::create_dir_all(dir.join("alertmanager")).unwrap();
        let rules =
            std::fs::read_to_string(root().join("infrastructure/prometheus/alerts.yml")).unwrap();
        std::fs::write(dir.join("alerts.drill.yml"), drill_overlay(&rules)).unwrap();

        let am_port = platform::testing::free_port().unwrap();
        let cluster_port = platform::testing::free_port().unwrap();
        std::fs::write(
            dir.join("alertmanager.yml"),
            "route:\n  receiver: drills\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: drills\n",
        )
        .unwrap();
        let mut alertmanager = Process::new(
            "alertmanager",
            PathBuf::from("/usr/bin/prometheus-alertmanager"),
            vec![
                format!("--config.file={}", dir.join("alertmanager.yml").display()),
                format!("--storage.path={}", dir.join("alertmanager").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                format!("--cluster.listen-address=127.0.0.1:{cluster_port}"),
            ],
            vec![],
            &dir,
        );
        alertmanager.start().unwrap();

        let prom_port = platform::testing::free_port().unwrap();
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\nscrape_configs:\n",
            dir.join("alerts.drill.yml").display()
        );
        for (job, port) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /actuator/prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut prometheus = Process::new(
            "prometheus",
            PathBuf::from("/usr/bin/prometheus"),
            vec![
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("prometheus").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ],
            vec![],
            &dir,
        );
        prometheus.start().unwrap();
        let watch = Watch {
            prometheus,
            alertmanager,
            prometheus_url: format!("http://127.0.0.1:{prom_port}"),
            alertmanager_url: format!("http://127.0.0.1:{am_port}"),
            dir,
            http: reqwest::Client::new(),
        };
        wait_up(
            &watch.http,
            &format!("{}/-/ready", watch.alertmanager_url),
            &watch.alertmanager,
        )
        .await;
        wait_up(
            &watch.http,
            &format!("{}/-/ready", watch.prometheus_url),
            &watch.prometheus,
        )
        .await;
        watch
    }

    /// Prometheus's state of each alert now (`pending` or `firing`), by name.
    async fn prometheus_states(&self) -> BTreeMap<String, String> {
        let body: Value = match self
            .http
            .get(format!("{}/api/v1/alerts", self.prometheus_url))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let mut states = BTreeMap::new();
        for alert in body["data"]["alerts"].as_array().into_iter().flatten() {
            let name = alert["labels"]["alertname"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let state = alert["state"].as_str().unwrap_or("").to_owned();
            // firing wins over pending when several series of one alert exist
            let entry = states.entry(name).or_insert_with(String::new);
            if entry.as_str() != "firing" {
                *entry = state;
            }
        }
        states
    }

    /// Waits (up to `within`) until Prometheus holds a sample of `selector`: an increase
    /// is only seen from a series Prometheus scraped before it rose.
    async fn wait_for_series(&self, selector: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let body: Value = match self
                .http
                .get(format!("{}/api/v1/query", self.prometheus_url))
                .query(&[("query", selector)])
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if body["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has no sample of {selector} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Names of the alerts Alertmanager holds as active.
    async fn alertmanager_alerts(&self) -> Vec<String> {
        let body: Value = match self
            .http
            .get(format!("{}/api/v2/alerts", self.alertmanager_url))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        body.as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"]["state"] == "active")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect()
    }

    async fn stop(mut self) {
        self.prometheus.kill9().await.unwrap();
        self.alertmanager.kill9().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One alert followed through its drill: times from its cause, and from its fix.
struct Tracker {
    name: &'static str,
    cause: Instant,
    fix: Option<Instant>,
    pending: Option<Duration>,
    firing: Option<Duration>,
    alertmanager: Option<Duration>,
    resolved: Option<Duration>,
}

impl Tracker {
    fn new(name: &'static str, cause: Instant) -> Self {
        Self {
            name,
            cause,
            fix: None,
            pending: None,
            firing: None,
            alertmanager: None,
            resolved: None,
        }
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: pending {}, firing {}, in Alertmanager {} after the cause; resolved {} after the fix",
            self.name,
            secs(self.pending),
            secs(self.firing),
            secs(self.alertmanager),
            secs(self.resolved)
        )
    }
}

/// Polls Prometheus and Alertmanager every 250 ms, noting for every tracker when its
/// alert went pending, firing, reached Alertmanager and (after its fix, once it had
/// arrived) left both, until `done` holds.
async fn follow(
    watch: &Watch,
    trackers: &mut [Tracker],
    what: &str,
    timeout: Duration,
    done: impl Fn(&Tracker) -> bool,
) {
    let start = Instant::now();
    loop {
        let states = watch.prometheus_states().await;
        let delivered = watch.alertmanager_alerts().await;
        for t in trackers.iter_mut() {
            let state = states.get(t.name).map(String::as_str);
            if matches!(state, Some("pending" | "firing")) {
                t.pending.get_or_insert(t.cause.elapsed());
            }
            if state == Some("firing") {
                t.firing.get_or_insert(t.cause.elapsed());
            }
            let arrived = delivered.iter().any(|d| d == t.name);
            if arrived {
                t.alertmanager.get_or_insert(t.cause.elapsed());
            }
            if let Some(fix) = t.fix {
                if t.alertmanager.is_some() && state.is_none() && !arrived {
                    t.resolved.get_or_insert(fix.elapsed());
                }
            }
        }
        if trackers.iter().all(&done) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{what} not within {timeout:?}: {trackers:#?}\nPrometheus says {states:?}, Alertmanager {delivered:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0} s", d.as_secs_f64()))
}

fn report(drill: &str, trackers: &[Tracker]) {
    for t in trackers {
        println!("DRILL {drill}: {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run by scripts/chaos.sh"]
async fn every_drilled_alert_goes_pending_fires_reaches_alertmanager_and_resolves() {
    let started = Instant::now();
    let mut platform = Platform::start(&[
        ("orders-created-topic", "orders.created"),
        ("payments-completed-topic", "payments.completed"),
        ("orders-released-topic", "orders.released"),
        ("payment-deadline-secs", "5"),
    ])
    .await
    .unwrap();
    let watch = Watch::start(&[
        ("customer-facing-service", platform.customer.port),
        ("order-management-service", platform.order.port),
        ("payment-gateway", platform.gateway.port),
    ])
    .await;
    let load = Load::start(&platform, 2, 4, 100_000).await.unwrap();
    load.wait_for_more(10, Duration::from_secs(60))
        .await
        .unwrap();
    // A clean start: nothing fires on healthy traffic.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let quiet = watch.prometheus_states().await;
    assert!(quiet.is_empty(), "alerts on a healthy platform: {quiet:?}");

    // Drills 1 and 2: the gateway refuses every charge and refund; a poison record
    // (nothing to fix: it resolves when the record leaves the window). The DLQ counters
    // start at 0, but Prometheus must have scraped that 0 before the record arrives, or
    // it sees a series born at 1 and no increase (seen once, on a fast start).
    watch
        .wait_for_series(
            r#"dlq_messages_total{topic="orders.released.dlq"}"#,
            Duration::from_secs(30),
        )
        .await;
    let cause = Instant::now();
    platform
        .gateway_faults(json!({"errorStatus": 503}))
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            format!("127.0.0.1:{}", platform.broker_port),
        )
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to("orders.released")
                .key("drill")
                .payload("{not json"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let poisoned = Instant::now();
    let mut trackers: Vec<Tracker> = [
        "PaymentCircuitBreakerOpen",
        "HttpServerErrorSurge",
        "PaymentsExpired",
        "PaymentRefundsPendingTooLong",
    ]
    .into_iter()
    .map(|name| Tracker::new(name, cause))
    .collect();
    for name in ["DeadLetterMessages", "StockReturnDeadLetters"] {
        let mut t = Tracker::new(name, poisoned);
        t.fix = Some(poisoned);
        trackers.push(t);
    }
    follow(
        &watch,
        &mut trackers,
        "every alert in Alertmanager",
        Duration::from_secs(150),
        |t| t.alertmanager.is_some(),
    )
    .await;
    let fix = Instant::now();
    platform
        .gateway_faults(json!({"errorStatus": null}))
        .await
        .unwrap();
    for t in trackers.iter_mut().filter(|t| t.fix.is_none()) {
        t.fix = Some(fix);
    }
    follow(
        &watch,
        &mut trackers,
        "every alert resolved",
        Duration::from_secs(180),
        |t| t.resolved.is_some(),
    )
    .await;
    report("gateway 503 / poison record", &trackers);

    // Drill 3: the broker down under checkouts.
    let mut trackers = vec![Tracker::new("OutboxBacklogHigh", Instant::now())];
    platform.broker.kill9().await.unwrap();
    follow(
        &watch,
        &mut trackers,
        "the outbox alert in Alertmanager",
        Duration::from_secs(90),
        |t| t.alertmanager.is_some(),
    )
    .await;
    trackers[0].fix = Some(Instant::now());
    platform.restart_broker().await.unwrap();
    follow(
        &watch,
        &mut trackers,
        "the outbox alert resolved",
        Duration::from_secs(120),
        |t| t.resolved.is_some(),
    )
    .await;
    report("broker down", &trackers);

    // Drill 4: the gateway failing 4 s out of every 8: the breaker opens and closes
    // again and again.
    let mut trackers = vec![Tracker::new(
        "PaymentCircuitBreakerOscillating",
        Instant::now(),
    )];
    let blips = GatewayBlips::start(
        &platform,
        json!({}),
        Duration::from_secs(4),
        Duration::from_secs(4),
    );
    follow(
        &watch,
        &mut trackers,
        "the oscillation alert in Alertmanager",
        Duration::from_secs(150),
        |t| t.alertmanager.is_some(),
    )
    .await;
    blips.stop().await.unwrap();
    platform
        .gateway_faults(json!({"errorStatus": null}))
        .await
        .unwrap();
    trackers[0].fix = Some(Instant::now());
    follow(
        &watch,
        &mut trackers,
        "the oscillation alert resolved",
        Duration::from_secs(120),
        |t| t.resolved.is_some(),
    )
    .await;
    report("gateway failing 4 s in 8", &trackers);

    let (_, _, _) = load.stop().await.unwrap();
    watch.stop().await;
    platform.stop().await.unwrap();
    println!(
        "DRILLS took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}
