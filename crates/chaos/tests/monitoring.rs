//! Every query an operator is given finds what it asks for: a private Prometheus (the
//! `prometheus` binary, scraping every second) scrapes the three services while real
//! checkouts go through (paid, declined, a paid order cancelled and refunded), then runs
//! every alert expression and recording rule of `infrastructure/prometheus/alerts.yml`,
//! every panel target of `infrastructure/grafana/dashboards/*.json` (template variables
//! substituted) and every PromQL query and metric name of `docs/runbook.md`. Each must
//! return series; one that is quiet by design (a threshold not crossed) must parse, and
//! each of its vector selectors, with its label matchers, must return series. A failure
//! names the expression and its file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chaos::metric_names::is_metric;
use chaos::{manager_token, Load, Platform, Process};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The vector selectors of a PromQL expression: each metric name with its `{...}`
/// matchers, as written.
fn selectors(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // A string (a label value): skip it whole.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '{' {
            // Matchers without a name in front (already taken with their name).
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if !is_metric(&word) || chars.get(j) == Some(&'(') {
                continue;
            }
            let mut selector = word;
            if chars.get(j) == Some(&'{') {
                let mut k = j;
                let mut quoted = false;
                while k < chars.len() {
                    match chars[k] {
                        '"' => quoted = !quoted,
                        '}' if !quoted => break,
                        _ => {}
                    }
                    k += 1;
                }
                selector.extend(&chars[j..=k.min(chars.len() - 1)]);
                i = k + 1;
            }
            if !found.contains(&selector) {
                found.push(selector);
            }
            continue;
        }
        i += 1;
    }
    found
}

/// `expr:` values of a Prometheus rule file (block scalars and one-liners), with the
/// alert or record name they belong to.
fn rule_expressions(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut name = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(rest) = trimmed
            .strip_prefix("alert:")
            .or_else(|| trimmed.strip_prefix("record:"))
        {
            name = rest.trim().to_owned();
        }
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            let indent = line.len() - line.trim_start().len();
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let mut body = Vec::new();
                i += 1;
                while i < lines.len()
                    && (lines[i].trim().is_empty()
                        || lines[i].len() - lines[i].trim_start().len() > indent)
                {
                    body.push(lines[i].trim());
                    i += 1;
                }
                out.push((name.clone(), body.join(" ")));
                continue;
            }
            out.push((
                name.clone(),
                rest.trim_matches('"').trim_matches('\'').to_owned(),
            ));
        }
        i += 1;
    }
    out
}

/// Every `expr` of a Grafana dashboard's panel targets, with the panel's title.
fn panel_expressions(value: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
            if let Some(targets) = map.get("targets").and_then(Value::as_array) {
                for target in targets {
                    if let Some(expr) = target.get("expr").and_then(Value::as_str) {
                        out.push((title.to_owned(), expr.to_owned()));
                    }
                }
            }
            for (key, child) in map {
                if key != "targets" {
                    panel_expressions(child, title, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| panel_expressions(v, title, out)),
        _ => {}
    }
}

/// Grafana's template variables, as the dashboard's "All" choice and a short range.
fn substitute_variables(expr: &str) -> String {
    expr.replace("${__rate_interval}", "1m")
        .replace("$__rate_interval", "1m")
        .replace("${application}", ".*")
        .replace("$application", ".*")
        .replace("${environment}", ".*")
        .replace("$environment", ".*")
        .replace("$__all", ".*")
}

/// The runbook's inline code that is PromQL or a metric name (not a shell command).
fn runbook_queries(text: &str) -> Vec<(String, String)> {
    const SHELL: [&str; 9] = [
        "curl", "jq ", "psql", "opsctl", "docker", "kubectl", "grep", "SELECT", "$(",
    ];
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (k, span) in line.split('`').enumerate() {
            if k % 2 == 0 || SHELL.iter().any(|s| span.contains(s)) || selectors(span).is_empty() {
                continue;
            }
            out.push((format!("line {}", n + 1), span.to_owned()));
        }
    }
    out
}

struct Prometheus {
    process: Process,
    url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(targets: &[(&str, u16)], rules: &Path) -> Prometheus {
        let dir = std::env::temp_dir().join(platform::testing::unique_name("prometheus"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = platform::testing::free_port().unwrap();
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
            rules.canonicalize().unwrap().display()
        );
        for (job, port) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /actuator/prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut process = Process::new(
            "prometheus",
            PathBuf::from("/usr/bin/prometheus"),
            vec![
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            vec![],
            &dir,
        );
        process.start().unwrap();
        let prometheus = Prometheus {
            process,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = prometheus
                .http
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not start:\n{}",
                prometheus.process.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The result of an instant query, or the error Prometheus gave.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body["error"].as_str().unwrap_or("error").to_owned());
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Why `expr` fails the check, if it does: an error, or no series from the whole
    /// expression and from one of its selectors.
    async fn check(&self, expr: &str) -> Option<String> {
        match self.query(expr).await {
            Err(e) => return Some(format!("does not run: {e}")),
            Ok(result) if !result.is_empty() => return None,
            Ok(_) => {}
        }
        let mut empty = Vec::new();
        for selector in selectors(expr) {
            match self.query(&selector).await {
                Ok(result) if !result.is_empty() => {}
                Ok(_) => empty.push(selector),
                Err(e) => empty.push(format!("{selector} ({e})")),
            }
        }
        if empty.is_empty() {
            None
        } else {
            Some(format!("no series for {}", empty.join(", ")))
        }
    }

    async fn stop(mut self) {
        self.process.kill9().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `expr` returns series (the scrapes and rate windows have caught up).
async fn wait_for_series(prometheus: &Prometheus, expr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while prometheus
        .query(expr)
        .await
        .map(|r| r.is_empty())
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            let targets: Value = prometheus
                .http
                .get(format!("{}/api/v1/targets", prometheus.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            panic!(
                "{expr} returned nothing within {timeout:?}; targets: {}\nattempts: {:?}\n{}",
                targets["data"]["activeTargets"],
                prometheus.query("checkout_attempt_total[2m]").await,
                prometheus.process.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_panel_and_runbook_query_returns_series_from_the_running_services() {
    // The real topic names (the broker is this test's own), as the rules read them.
    let mut platform = Platform::start(&[
        ("orders-created-topic", "orders.created"),
        ("payments-completed-topic", "payments.completed"),
        ("orders-released-topic", "orders.released"),
        // The production limit, so that the lookups below meet it.
        ("order-lookup-burst", "30"),
    ])
    .await
    .unwrap();
    let rules = root().join("infrastructure/prometheus/alerts.yml");
    let prometheus = Prometheus::start(
        &[
            ("customer-facing-service", platform.customer.port),
            ("order-management-service", platform.order.port),
            ("payment-gateway", platform.gateway.port),
        ],
        &rules,
    )
    .await;

    // Every counter's value before the traffic is scraped, so increase() sees it.
    wait_for_series(&prometheus, "count(up == 1) == 3", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Paid checkouts, then declined ones, then a paid order cancelled and refunded;
    // each phase spans several scrapes.
    let load = Load::start(&platform, 2, 4, 10_000).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    platform
        .gateway_faults(json!({"successRate": 0.0}))
        .await
        .unwrap();
    load.wait_for_more(4, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    platform
        .gateway_faults(json!({"successRate": 1.0}))
        .await
        .unwrap();
    load.wait_for_more(6, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A few 5xx (the gateway refusing charges; the orders wait and are charged after).
    platform
        .gateway_faults(json!({"errorStatus": 503}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    platform
        .gateway_faults(json!({"errorStatus": null}))
        .await
        .unwrap();
    load.wait_for_more(6, Duration::from_secs(60))
        .await
        .unwrap();
    let (accepted, _, _) = load.stop().await.unwrap();
    // The order service reports not ready while the broker is down (readiness 503).
    platform.broker.kill9().await.unwrap();
    platform
        .order
        .wait_readiness(503, Duration::from_secs(30))
        .await
        .unwrap();
    platform.restart_broker().await.unwrap();
    platform
        .order
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    let token = manager_token(&platform.customer.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cancelled = loop {
        let states = platform.order_states().await.unwrap();
        let paid = accepted.iter().find(|c| {
            states
                .get(&c.order_number)
                .is_some_and(|(s, _)| s == "PAID")
        });
        if let Some(paid) = paid {
            let (status, body) = platform.cancel(&token, &paid.order_number).await.unwrap();
            assert!(status < 300, "cancel answered {status}: {body}");
            break paid.order_number.clone();
        }
        assert!(Instant::now() < deadline, "no checkout got PAID");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.order_states().await.unwrap()[&cancelled]
        .1
        .as_deref()
        != Some("REFUNDED")
    {
        assert!(
            Instant::now() < deadline,
            "the cancelled order {cancelled} was not refunded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anonymous order lookups past the per-client limit: the 429s the runbook counts.
    let http = reqwest::Client::new();
    let mut refused = 0;
    for _ in 0..60 {
        let status = http
            .get(format!(
                "{}/api/v1/orders/{cancelled}",
                platform.customer.url()
            ))
            .send()
            .await
            .unwrap()
            .status();
        refused += usize::from(status == 429);
    }
    assert!(
        refused > 0,
        "60 anonymous lookups at once were never limited"
    );
    // Scrapes after the journeys, and two samples inside every rate window.
    wait_for_series(
        &prometheus,
        "sum(increase(checkout_attempt_total[1m])) > 0",
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut queries: Vec<(String, String)> = Vec::new();
    for (name, expr) in rule_expressions(&rules) {
        queries.push((format!("infrastructure/prometheus/alerts.yml {name}"), expr));
    }
    let dashboards = root().join("infrastructure/grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut panels = Vec::new();
        panel_expressions(&dashboard, "", &mut panels);
        let file = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        for (title, expr) in panels {
            queries.push((
                format!("{file} panel \"{title}\""),
                substitute_variables(&expr),
            ));
        }
    }
    let runbook = std::fs::read_to_string(root().join("docs/runbook.md")).unwrap();
    for (line, expr) in runbook_queries(&runbook) {
        queries.push((format!("docs/runbook.md {line}"), expr));
    }
    assert!(queries.len() > 60, "found only {} queries", queries.len());

    let mut failures = Vec::new();
    for (whence, expr) in &queries {
        if let Some(why) = prometheus.check(expr).await {
            failures.push(format!("{whence}: `{expr}` {why}"));
        }
    }
    prometheus.stop().await;
    platform.stop().await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} queries find nothing:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

#[test]
fn selectors_are_the_metric_names_with_their_matchers() {
    assert_eq!(
        selectors(
            r#"sum by (topic) (increase(dlq_messages_total{topic="orders.released.dlq"}[5m])) > 0 and rate(checkout_attempt_total[5m])"#
        ),
        vec![
            r#"dlq_messages_total{topic="orders.released.dlq"}"#.to_owned(),
            "checkout_attempt_total".to_owned()
        ]
    );
    assert!(selectors("curl -s http://127.0.0.1:9090/actuator/health").is_empty());
}
