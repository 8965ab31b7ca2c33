//! Reconciliation of the three records of an order: the checkout (an
//! `order_created_outbox` row in `customer_db`, keyed by the customer-facing order id),
//! the order (`orders` in `order_db`, whose `source_order_id` is that id) and the
//! charges in the payment gateway's ledger (`GET /api/v1/payments`).
//!
//! Findings:
//! - **missing**: a checkout older than the grace period with no order;
//! - **duplicated**: an order number on two orders, or on two checkouts (constraints
//!   forbid both, so this checks the constraints);
//! - **stuck**: an order `PENDING` or `PROCESSING` for longer than `--stuck-after`;
//! - **double-charged**: more than one successful charge for one order in the ledger,
//!   or a ledger line whose key was charged more than once.

use crate::cli::{ReconcileArgs, Settings};
use crate::duration;
use crate::output::{self, Output};
use crate::Outcome;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// What is wrong with an order.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Missing,
    Duplicated,
    Stuck,
    DoubleCharged,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Duplicated => "duplicated",
            Self::Stuck => "stuck",
            Self::DoubleCharged => "double-charged",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: Kind,
    /// The customer-facing order id (the checkout's), when known.
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub checkouts: usize,
    pub orders_matched: usize,
    /// Ledger lines read; `None` when the ledger was skipped.
    pub ledger_lines: Option<usize>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }
}

/// A line of the gateway's ledger (the fields reconciliation needs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerLine {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_number: Option<String>,
    pub status: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default = "one")]
    pub charge_count: u64,
}

fn one() -> u64 {
    1
}

/// Reads every charge of the gateway's ledger.
pub async fn fetch_ledger(gateway_base: &str) -> anyhow::Result<Vec<LedgerLine>> {
    let url = format!("{}/api/v1/payments", gateway_base.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| {
            format!(
                "cannot read the payment gateway's ledger at {url} (use --no-ledger to skip it)"
            )
        })?;
    anyhow::ensure!(
        response.status().is_success(),
        "the payment gateway answered {} for {url}",
        response.status()
    );
    response
        .json()
        .await
        .with_context(|| format!("unexpected ledger body from {url}"))
}

/// Compares the databases (and the ledger, when given).
pub async fn reconcile(
    customer: &PgPool,
    order: &PgPool,
    ledger: Option<&[LedgerLine]>,
    args: &ReconcileArgs,
) -> anyhow::Result<Report> {
    let since = duration::ago(args.window);
    let grace_cutoff = duration::ago(args.grace);
    let checkouts = sqlx::query!(
        r#"SELECT aggregate_id, payload->>'orderNumber' AS order_number, status, created_at
           FROM order_created_outbox WHERE created_at >= $1 ORDER BY created_at"#,
        since
    )
    .fetch_all(customer)
    .await
    .context("cannot read checkouts from customer_db")?;
    let ids: Vec<Uuid> = checkouts.iter().map(|c| c.aggregate_id).collect();
    let orders = sqlx::query!(
        r#"SELECT id, order_number, source_order_id, status::text AS "status!"
           FROM orders WHERE source_order_id = ANY($1)"#,
        &ids
    )
    .fetch_all(order)
    .await
    .context("cannot read orders from order_db")?;
    let by_source: HashMap<Uuid, _> = orders.iter().map(|o| (o.source_order_id, o)).collect();
    let mut report = Report {
        checkouts: checkouts.len(),
        orders_matched: by_source.len(),
        ..Report::default()
    };

    let mut numbers: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for c in &checkouts {
        if let Some(number) = c.order_number.as_deref() {
            numbers.entry(number).or_default().push(c.aggregate_id);
        }
        if c.created_at <= grace_cutoff && !by_source.contains_key(&c.aggregate_id) {
            report.findings.push(Finding {
                kind: Kind::Missing,
                order_id: Some(c.aggregate_id),
                order_number: c.order_number.clone(),
                detail: format!(
                    "checkout {} ago has no order (outbox row {})",
                    duration::human(duration::age(c.created_at)),
                    c.status
                ),
            });
        }
    }
    for (number, ids) in numbers.iter().filter(|(_, ids)| ids.len() > 1) {
        report.findings.push(Finding {
            kind: Kind::Duplicated,
            order_id: ids.first().copied(),
            order_number: Some((*number).to_owned()),
            detail: format!("{} checkouts carry this order number", ids.len()),
        });
    }
    let duplicates = sqlx::query!(
        r#"SELECT order_number, count(*) AS "n!" FROM orders
           GROUP BY order_number HAVING count(*) > 1"#
    )
    .fetch_all(order)
    .await?;
    for d in duplicates {
        report.findings.push(Finding {
            kind: Kind::Duplicated,
            order_id: None,
            order_number: Some(d.order_number),
            detail: format!("{} orders carry this order number", d.n),
        });
    }

    let stuck = sqlx::query!(
        r#"SELECT order_number, source_order_id, status::text AS "status!", created_at
           FROM orders WHERE status IN ('PENDING', 'PROCESSING') AND created_at < $1
           ORDER BY created_at"#,
        duration::ago(args.stuck_after)
    )
    .fetch_all(order)
    .await?;
    for s in stuck {
        report.findings.push(Finding {
            kind: Kind::Stuck,
            order_id: Some(s.source_order_id),
            order_number: Some(s.order_number),
            detail: format!(
                "{} for {}",
                s.status,
                duration::human(duration::age(s.created_at))
            ),
        });
    }

    if let Some(ledger) = ledger {
        report.ledger_lines = Some(ledger.len());
        let mut succeeded: BTreeMap<Uuid, Vec<&LedgerLine>> = BTreeMap::new();
        for line in ledger.iter().filter(|l| l.status == "SUCCEEDED") {
            succeeded.entry(line.order_id).or_default().push(line);
        }
        let charged: Vec<Uuid> = succeeded.keys().copied().collect();
        // The gateway may know an order by either id: map both to the checkout's.
        let known = sqlx::query!(
            "SELECT id, source_order_id, order_number FROM orders
             WHERE id = ANY($1) OR source_order_id = ANY($1)",
            &charged
        )
        .fetch_all(order)
        .await?;
        let mut names: HashMap<Uuid, (Uuid, String)> = HashMap::new();
        for k in known {
            names.insert(k.id, (k.source_order_id, k.order_number.clone()));
            names.insert(k.source_order_id, (k.source_order_id, k.order_number));
        }
        for (order_id, lines) in succeeded {
            let charges: u64 = lines.iter().map(|l| l.charge_count).sum();
            if charges <= 1 {
                continue;
            }
            let (id, number) = names
                .get(&order_id)
                .map(|(id, n)| (*id, Some(n.clone())))
                .unwrap_or((order_id, lines.iter().find_map(|l| l.order_number.clone())));
            let ids: Vec<String> = lines.iter().map(|l| l.id.to_string()).collect();
            report.findings.push(Finding {
                kind: Kind::DoubleCharged,
                order_id: Some(id),
                order_number: number,
                detail: format!("{charges} successful charges ({})", ids.join(", ")),
            });
        }
    }
    report.findings.sort_by_key(|f| f.kind);
    Ok(report)
}

/// Runs `opsctl reconcile`.
pub async fn run(
    settings: &Settings,
    args: ReconcileArgs,
    out: &Output,
) -> anyhow::Result<Outcome> {
    let customer = crate::db::connect(&settings.customer_database_url, "customer_db").await?;
    let order = crate::db::connect(&settings.order_database_url, "order_db").await?;
    let ledger = if args.no_ledger {
        None
    } else {
        Some(fetch_ledger(settings.gateway_base()).await?)
    };
    let report = reconcile(&customer, &order, ledger.as_deref(), &args).await?;
    if out.json() {
        out.print_json(&report)?;
    } else {
        if !report.findings.is_empty() {
            let rows = report
                .findings
                .iter()
                .map(|f| {
                    vec![
                        f.kind.label().to_owned(),
                        output::opt(f.order_number.as_deref()),
                        output::opt(f.order_id),
                        f.detail.clone(),
                    ]
                })
                .collect();
            out.print_table(&["PROBLEM", "ORDER NUMBER", "ORDER ID", "DETAIL"], rows);
        }
        let count = |k| report.of_kind(k).count();
        println!(
            "{} checkout(s), {} with an order, {}; missing {}, duplicated {}, stuck {}, double-charged {}",
            report.checkouts,
            report.orders_matched,
            report
                .ledger_lines
                .map_or_else(|| "ledger skipped".to_owned(), |n| format!("{n} ledger line(s)")),
            count(Kind::Missing),
            count(Kind::Duplicated),
            count(Kind::Stuck),
            count(Kind::DoubleCharged),
        );
    }
    Ok(if report.findings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::ProblemsFound
    })
}
