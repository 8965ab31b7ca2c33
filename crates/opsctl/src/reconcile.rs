//! Reconciliation of the records of an order, keyed by the checkout's order id (the
//! customer-facing order id, `orders.source_order_id`, the gateway's `orderId` and
//! idempotency key since ADR 0007):
//! - the checkout: an `order_created_outbox` row in `customer_db`;
//! - the order and its payment: `orders` and `payment_transactions` in `order_db`;
//! - the stock given back: a `stock_returns` row in `customer_db` (ADR 0007);
//! - the money: the payment gateway's ledger (`GET /api/v1/payments`, whose lines carry
//!   `netAmount` = charged minus refunded, and `GET /api/v1/refunds`).
//!
//! Findings (every kind but `refund-pending` is a problem and makes the command exit 1):
//! - **missing**: a checkout older than the grace period with no order;
//! - **duplicated**: an order number on two orders, or on two checkouts (constraints
//!   forbid both, so this checks the constraints);
//! - **stuck**: an order `PENDING` or `PROCESSING` for longer than `--stuck-after`;
//! - **double-charged**: more than one successful charge for one order in the ledger,
//!   or a ledger line whose key was charged more than once;
//! - **amount-mismatch**: a `PAID`/`FULFILLED` order whose net charge is not its
//!   subtotal, or a `FAILED`/`CANCELLED` order whose net charge is not zero and whose
//!   refund is not pending (or has been pending for longer than the grace period);
//! - **refund-pending** (informational): a refund requested less than the grace period
//!   ago and not done yet; the order service's refund worker retries it by itself;
//! - **orphan-charge**: a ledger charge or refund that belongs to no order;
//! - **stock-not-returned**: a `FAILED`/`CANCELLED` order that ended longer than the
//!   grace period ago with no `stock_returns` row;
//! - **stock-returned-wrongly**: a `stock_returns` row of an order that is not
//!   `FAILED`/`CANCELLED`, or of no order at all.
//!
//! The tables and columns of ADR 0007 (`stock_returns`, the `refund_*` columns) are read
//! with runtime-checked queries, after checking that they exist: opsctl must keep
//! working against a deployment that predates them, where it says in one line what it
//! could not check instead of failing. Everything else uses compile-checked queries.
//!
//! [`repair`] (`--repair`) re-drives what the platform can redo by itself: see its
//! documentation.

use crate::cli::{ReconcileArgs, Settings};
use crate::duration;
use crate::outbox::{self, Outbox};
use crate::output::{self, Output};
use crate::Outcome;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// What is wrong with an order (or, for `refund-pending`, what is still in flight).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Missing,
    Duplicated,
    Stuck,
    DoubleCharged,
    AmountMismatch,
    OrphanCharge,
    StockNotReturned,
    StockReturnedWrongly,
    RefundPending,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Self; 9] = [
        Self::Missing,
        Self::Duplicated,
        Self::Stuck,
        Self::DoubleCharged,
        Self::AmountMismatch,
        Self::OrphanCharge,
        Self::StockNotReturned,
        Self::StockReturnedWrongly,
        Self::RefundPending,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Duplicated => "duplicated",
            Self::Stuck => "stuck",
            Self::DoubleCharged => "double-charged",
            Self::AmountMismatch => "amount-mismatch",
            Self::OrphanCharge => "orphan-charge",
            Self::StockNotReturned => "stock-not-returned",
            Self::StockReturnedWrongly => "stock-returned-wrongly",
            Self::RefundPending => "refund-pending",
        }
    }

    /// Whether the finding is a mismatch (exit 1); `refund-pending` is informational.
    pub fn is_problem(self) -> bool {
        self != Self::RefundPending
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

/// What `--repair` did about one finding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repair {
    pub kind: Kind,
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    /// Whether a row was changed (false: nothing to do, or nothing opsctl can do).
    pub changed: bool,
    pub action: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub checkouts: usize,
    pub orders_matched: usize,
    /// Ledger lines read; `None` when the ledger was skipped.
    pub ledger_lines: Option<usize>,
    /// Ledger refunds read; `None` when the ledger was skipped or has no refunds API.
    pub ledger_refunds: Option<usize>,
    /// What could not be checked against this deployment, one line each.
    pub notes: Vec<String>,
    pub findings: Vec<Finding>,
    /// What `--repair` did, one entry per finding; empty without `--repair`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<Repair>,
}

impl Report {
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }

    /// The findings that are mismatches (all but `refund-pending`).
    pub fn problems(&self) -> usize {
        self.findings.iter().filter(|f| f.kind.is_problem()).count()
    }

    fn push(&mut self, kind: Kind, order_id: Option<Uuid>, number: Option<&str>, detail: String) {
        self.findings.push(Finding {
            kind,
            order_id,
            order_number: number.map(str::to_owned),
            detail,
        });
    }
}

/// A line of the gateway's ledger (the fields reconciliation needs). The amounts of
/// ADR 0007 are optional so that an older gateway's ledger still reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerLine {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_number: Option<String>,
    pub status: String,
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub refunded_amount: Option<f64>,
    #[serde(default)]
    pub net_amount: Option<f64>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default = "one")]
    pub charge_count: u64,
}

fn one() -> u64 {
    1
}

impl LedgerLine {
    /// Charged minus refunded, in cents: the gateway's `netAmount`, else computed (an
    /// older gateway refunds nothing, and a decline moves no money).
    pub fn net_cents(&self) -> i64 {
        if let Some(net) = self.net_amount {
            return cents(net);
        }
        if self.status != "SUCCEEDED" {
            return 0;
        }
        cents(self.amount.unwrap_or_default()) - cents(self.refunded_amount.unwrap_or_default())
    }
}

/// A refund of the gateway's ledger (`GET /api/v1/refunds`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundLine {
    pub id: Uuid,
    /// Null when nothing was charged under the key.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// The charge's idempotency key: the checkout's order id.
    #[serde(default)]
    pub payment_key: Option<String>,
    pub status: String,
    #[serde(default)]
    pub amount: Option<f64>,
}

impl RefundLine {
    /// The order ids this refund may belong to.
    fn order_ids(&self) -> Vec<Uuid> {
        self.order_id
            .into_iter()
            .chain(
                self.payment_key
                    .as_deref()
                    .and_then(|k| Uuid::parse_str(k).ok()),
            )
            .collect()
    }
}

/// The gateway's ledger: charges, and refunds when the gateway has a refunds API.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub charges: Vec<LedgerLine>,
    /// `None` for a gateway older than ADR 0007 (no `GET /api/v1/refunds`).
    pub refunds: Option<Vec<RefundLine>>,
}

/// An amount as whole cents (the ledger's amounts are JSON numbers with two decimals).
pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Cents as `12.34`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// Reads the gateway's ledger: every charge, and every refund when the gateway has a
/// refunds API (a 404 there means an older gateway, noted by [`reconcile`]). `token` is
/// the gateway's admin token, which reads the ledger; it pages through both lists.
pub async fn fetch_ledger(gateway_base: &str, token: Option<&str>) -> anyhow::Result<Ledger> {
    let base = gateway_base.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let charges = fetch_all(&client, &format!("{base}/api/v1/payments"), token)
        .await
        .context("use --no-ledger to skip the ledger")?
        .context("the payment gateway has no ledger API")?;
    let refunds = fetch_all(&client, &format!("{base}/api/v1/refunds"), token).await?;
    Ok(Ledger { charges, refunds })
}

/// Lines the gateway is asked for at once: its largest page.
const LEDGER_PAGE: usize = 500;

/// Every line of a paged gateway listing at `url`, oldest first; `None` when the gateway
/// answers 404 (it predates that listing).
async fn fetch_all<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<Option<Vec<T>>> {
    let mut lines = Vec::new();
    for page in 0.. {
        let mut request = client
            .get(url)
            .query(&[("page", page), ("size", LEDGER_PAGE)]);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot read the payment gateway at {url}"))?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => return Ok(None),
            reqwest::StatusCode::UNAUTHORIZED => anyhow::bail!(
                "the payment gateway refused to show {url}: set PAYMENT_GATEWAY_ADMIN_TOKEN \
                 to its admin token"
            ),
            status if !status.is_success() => {
                anyhow::bail!("the payment gateway answered {status} for {url}")
            }
            _ => {}
        }
        let page: Vec<T> = response
            .json()
            .await
            .with_context(|| format!("unexpected body from {url}"))?;
        let last = page.len() < LEDGER_PAGE;
        lines.extend(page);
        if last {
            break;
        }
    }
    Ok(Some(lines))
}

/// A pending refund of an order (`refund_requested_at` set, not refunded yet).
#[derive(Debug, Clone)]
struct PendingRefund {
    requested_at: chrono::NaiveDateTime,
    attempts: i64,
    last_error: Option<String>,
}

/// Whether `order_db` has the refund columns of migration 0002 (ADR 0007).
async fn has_refund_columns(order: &PgPool) -> anyhow::Result<bool> {
    // Runtime-checked: information_schema, so that it works on every schema version.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'payment_transactions'
           AND column_name IN ('refund_requested_at', 'refunded_at', 'refund_next_attempt_at')",
    )
    .fetch_one(order)
    .await
    .context("cannot read order_db's schema")?;
    Ok(n == 3)
}

/// Whether `customer_db` has the `stock_returns` table (ADR 0007).
async fn has_stock_returns(customer: &PgPool) -> anyhow::Result<bool> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('stock_returns') IS NOT NULL")
        .fetch_one(customer)
        .await
        .context("cannot read customer_db's schema")?;
    Ok(exists)
}

/// Pending refunds of orders created since `since` or among `ids`, by checkout order id.
async fn pending_refunds(
    order: &PgPool,
    since: chrono::NaiveDateTime,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, PendingRefund>> {
    // Runtime-checked: the refund columns come with order_db's migration 0002 (ADR
    // 0007), which older deployments (and this crate's offline query data) lack. The
    // casts keep the decoding independent of the exact column types.
    let rows = sqlx::query(
        "SELECT o.source_order_id, p.refund_requested_at::timestamp AS requested_at,
                COALESCE(p.refund_attempt_count, 0)::bigint AS attempts,
                p.refund_last_error::text AS last_error
         FROM payment_transactions p JOIN orders o ON o.id = p.order_id
         WHERE p.refund_requested_at IS NOT NULL AND p.refunded_at IS NULL
           AND p.status::text <> 'REFUNDED'
           AND (o.created_at >= $1 OR o.source_order_id = ANY($2))",
    )
    .bind(since)
    .bind(ids)
    .fetch_all(order)
    .await
    .context("cannot read pending refunds from order_db")?;
    let mut pending = HashMap::new();
    for row in rows {
        pending.insert(
            row.try_get::<Uuid, _>("source_order_id")?,
            PendingRefund {
                requested_at: row.try_get("requested_at")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
            },
        );
    }
    Ok(pending)
}

fn is_ended(status: &str) -> bool {
    matches!(status, "FAILED" | "CANCELLED")
}

fn is_paid(status: &str) -> bool {
    matches!(status, "PAID" | "FULFILLED")
}

/// Compares the databases (and the ledger, when given).
pub async fn reconcile(
    customer: &PgPool,
    order: &PgPool,
    ledger: Option<&Ledger>,
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
            report.push(
                Kind::Missing,
                Some(c.aggregate_id),
                c.order_number.as_deref(),
                format!(
                    "checkout {} ago has no order (outbox row {})",
                    duration::human(duration::age(c.created_at)),
                    c.status
                ),
            );
        }
    }
    for (number, ids) in numbers.iter().filter(|(_, ids)| ids.len() > 1) {
        report.push(
            Kind::Duplicated,
            ids.first().copied(),
            Some(*number),
            format!("{} checkouts carry this order number", ids.len()),
        );
    }
    let duplicates = sqlx::query!(
        r#"SELECT order_number, count(*) AS "n!" FROM orders
           GROUP BY order_number HAVING count(*) > 1"#
    )
    .fetch_all(order)
    .await?;
    for d in duplicates {
        report.push(
            Kind::Duplicated,
            None,
            Some(d.order_number.as_str()),
            format!("{} orders carry this order number", d.n),
        );
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
        report.push(
            Kind::Stuck,
            Some(s.source_order_id),
            Some(s.order_number.as_str()),
            format!(
                "{} for {}",
                s.status,
                duration::human(duration::age(s.created_at))
            ),
        );
    }

    // The orders whose money and stock are checked: those created within the window.
    let recent = sqlx::query!(
        r#"SELECT o.source_order_id, o.order_number, o.status::text AS "status!",
                  (o.subtotal * 100)::bigint AS "subtotal_cents!", o.updated_at,
                  p.status::text AS "payment_status?"
           FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id
           WHERE o.created_at >= $1
           ORDER BY o.created_at"#,
        since
    )
    .fetch_all(order)
    .await
    .context("cannot read orders from order_db")?;
    let recent_ids: Vec<Uuid> = recent.iter().map(|o| o.source_order_id).collect();

    let refunds = if has_refund_columns(order).await? {
        pending_refunds(order, since, &recent_ids).await?
    } else {
        report.notes.push(
            "order_db has no refund columns yet (migration 0002, ADR 0007): pending refunds not checked"
                .to_owned(),
        );
        HashMap::new()
    };

    // The ledger's lines by checkout order id (the gateway may know an order by either
    // id: its own row id before ADR 0007, the checkout's since), and the ones that
    // belong to no order.
    let mut net: HashMap<Uuid, i64> = HashMap::new();
    let mut double_charged: HashSet<Uuid> = HashSet::new();
    if let Some(ledger) = ledger {
        report.ledger_lines = Some(ledger.charges.len());
        report.ledger_refunds = ledger.refunds.as_ref().map(Vec::len);
        if ledger.refunds.is_none() {
            report.notes.push(
                "the payment gateway has no refunds API (older than ADR 0007): ledger refunds not checked"
                    .to_owned(),
            );
        }
        let mut referenced: Vec<Uuid> = ledger.charges.iter().map(|l| l.order_id).collect();
        for refund in ledger.refunds.iter().flatten() {
            referenced.extend(refund.order_ids());
        }
        referenced.sort_unstable();
        referenced.dedup();
        let known = sqlx::query!(
            "SELECT id, source_order_id, order_number FROM orders
             WHERE id = ANY($1) OR source_order_id = ANY($1)",
            &referenced
        )
        .fetch_all(order)
        .await?;
        let mut names: HashMap<Uuid, (Uuid, String)> = HashMap::new();
        for k in known {
            names.insert(k.id, (k.source_order_id, k.order_number.clone()));
            names.insert(k.source_order_id, (k.source_order_id, k.order_number));
        }

        let mut succeeded: BTreeMap<Uuid, Vec<&LedgerLine>> = BTreeMap::new();
        for line in &ledger.charges {
            let Some((id, _)) = names.get(&line.order_id) else {
                report.push(
                    Kind::OrphanCharge,
                    Some(line.order_id),
                    line.order_number.as_deref(),
                    format!(
                        "ledger charge {} ({} {}, key {}) belongs to no order in order_db",
                        line.id,
                        line.status,
                        line.amount
                            .map_or_else(|| "-".to_owned(), |a| money(cents(a))),
                        output::opt(line.idempotency_key.as_deref())
                    ),
                );
                continue;
            };
            *net.entry(*id).or_default() += line.net_cents();
            if line.status == "SUCCEEDED" {
                succeeded.entry(*id).or_default().push(line);
            }
        }
        for refund in ledger.refunds.iter().flatten() {
            if !refund.order_ids().iter().any(|id| names.contains_key(id)) {
                report.push(
                    Kind::OrphanCharge,
                    refund.order_id,
                    None,
                    format!(
                        "ledger refund {} ({} {}, payment key {}) belongs to no order in order_db",
                        refund.id,
                        refund.status,
                        refund
                            .amount
                            .map_or_else(|| "-".to_owned(), |a| money(cents(a))),
                        output::opt(refund.payment_key.as_deref())
                    ),
                );
            }
        }
        for (order_id, lines) in succeeded {
            let charges: u64 = lines.iter().map(|l| l.charge_count).sum();
            if charges <= 1 {
                continue;
            }
            double_charged.insert(order_id);
            let number = names.get(&order_id).map(|(_, n)| n.as_str());
            let ids: Vec<String> = lines.iter().map(|l| l.id.to_string()).collect();
            report.push(
                Kind::DoubleCharged,
                Some(order_id),
                number,
                format!("{charges} successful charges ({})", ids.join(", ")),
            );
        }
    }

    // Money: a paid order is charged its subtotal; an ended one is charged nothing once
    // its refund is done. A double charge is already reported as such.
    for o in &recent {
        let id = o.source_order_id;
        let number = Some(o.order_number.as_str());
        if let Some(refund) = refunds.get(&id) {
            let age = duration::age(refund.requested_at);
            let state = format!(
                "refund requested {} ago, not done yet ({} attempt(s){})",
                duration::human(age),
                refund.attempts,
                refund
                    .last_error
                    .as_deref()
                    .map_or_else(String::new, |e| format!(", last error: {e}"))
            );
            if refund.requested_at > grace_cutoff {
                report.push(Kind::RefundPending, Some(id), number, state);
            } else {
                report.push(
                    Kind::AmountMismatch,
                    Some(id),
                    number,
                    format!("{} {state}, longer than the grace period", o.status),
                );
            }
            continue;
        }
        if ledger.is_none() || double_charged.contains(&id) {
            continue;
        }
        let charged = net.get(&id).copied().unwrap_or_default();
        if is_paid(&o.status) && charged != o.subtotal_cents {
            let detail = if net.contains_key(&id) {
                format!(
                    "{} with a net charge of {}, expected {}",
                    o.status,
                    money(charged),
                    money(o.subtotal_cents)
                )
            } else {
                format!(
                    "{} but the ledger has no charge for it (expected {})",
                    o.status,
                    money(o.subtotal_cents)
                )
            };
            report.push(Kind::AmountMismatch, Some(id), number, detail);
        } else if is_ended(&o.status) && charged != 0 {
            let why = match o.payment_status.as_deref() {
                Some("REFUNDED") => "order_db records it REFUNDED",
                _ => "and no refund is pending",
            };
            report.push(
                Kind::AmountMismatch,
                Some(id),
                number,
                format!(
                    "{} with a net charge of {}, expected 0.00 ({why})",
                    o.status,
                    money(charged)
                ),
            );
        }
    }

    if has_stock_returns(customer).await? {
        check_stock(
            customer,
            order,
            &recent_ids,
            since,
            grace_cutoff,
            &mut report,
        )
        .await?;
    } else {
        report.notes.push(
            "customer_db has no stock_returns table yet (migration 0002, ADR 0007): stock returns not checked"
                .to_owned(),
        );
    }
    report.findings.sort_by_key(|f| f.kind);
    Ok(report)
}

/// Stock: every order that ended longer than the grace period ago has its
/// `stock_returns` row, and no other order has one.
async fn check_stock(
    customer: &PgPool,
    order: &PgPool,
    recent_ids: &[Uuid],
    since: chrono::NaiveDateTime,
    grace_cutoff: chrono::NaiveDateTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    // Runtime-checked: stock_returns comes with customer_db's migration 0002 (ADR
    // 0007), which older deployments (and this crate's offline query data) lack.
    let rows = sqlx::query(
        "SELECT order_id, order_number::text AS order_number, order_status::text AS order_status
         FROM stock_returns WHERE returned_at >= $1 OR order_id = ANY($2)",
    )
    .bind(since)
    .bind(recent_ids)
    .fetch_all(customer)
    .await
    .context("cannot read stock_returns from customer_db")?;
    let mut returned: HashMap<Uuid, (Option<String>, Option<String>)> = HashMap::new();
    for row in rows {
        returned.insert(
            row.try_get("order_id")?,
            (row.try_get("order_number")?, row.try_get("order_status")?),
        );
    }
    let returned_ids: Vec<Uuid> = returned.keys().copied().collect();
    let ended = sqlx::query!(
        r#"SELECT source_order_id, order_number, status::text AS "status!", updated_at
           FROM orders
           WHERE (created_at >= $1 AND status IN ('FAILED', 'CANCELLED'))
              OR source_order_id = ANY($2)"#,
        since,
        &returned_ids
    )
    .fetch_all(order)
    .await
    .context("cannot read orders from order_db")?;
    let released: Vec<Uuid> = ended
        .iter()
        .filter(|o| is_ended(&o.status) && !returned.contains_key(&o.source_order_id))
        .map(|o| o.source_order_id)
        .collect();
    let outbox_rows = sqlx::query!(
        "SELECT aggregate_id, status FROM payment_completed_outbox
         WHERE topic = $1 AND aggregate_id = ANY($2)",
        events::ORDERS_RELEASED_TOPIC,
        &released
    )
    .fetch_all(order)
    .await
    .context("cannot read payment_completed_outbox from order_db")?;
    let outbox_status: HashMap<Uuid, String> = outbox_rows
        .into_iter()
        .map(|r| (r.aggregate_id, r.status))
        .collect();

    let mut known: HashSet<Uuid> = HashSet::new();
    for o in &ended {
        known.insert(o.source_order_id);
        let id = o.source_order_id;
        match returned.get(&id) {
            None if is_ended(&o.status) && o.updated_at <= grace_cutoff => {
                let outbox = outbox_status.get(&id).map_or_else(
                    || {
                        format!(
                            "no {} row in payment_completed_outbox",
                            events::ORDERS_RELEASED_TOPIC
                        )
                    },
                    |s| format!("its {} outbox row is {s}", events::ORDERS_RELEASED_TOPIC),
                );
                report.push(
                    Kind::StockNotReturned,
                    Some(id),
                    Some(o.order_number.as_str()),
                    format!(
                        "{} {} ago and no stock_returns row; {outbox}",
                        o.status,
                        duration::human(duration::age(o.updated_at))
                    ),
                );
            }
            Some((_, status)) if !is_ended(&o.status) => report.push(
                Kind::StockReturnedWrongly,
                Some(id),
                Some(o.order_number.as_str()),
                format!(
                    "stock_returns has a row (as {}) but the order is {}",
                    output::opt(status.as_deref()),
                    o.status
                ),
            ),
            _ => {}
        }
    }
    for (id, (number, status)) in &returned {
        if !known.contains(id) {
            report.push(
                Kind::StockReturnedWrongly,
                Some(*id),
                number.as_deref(),
                format!(
                    "stock_returns has a row (as {}) for an order order_db does not know",
                    output::opt(status.as_deref())
                ),
            );
        }
    }
    Ok(())
}

/// Makes a stuck `PENDING` payment due now (unless a gateway call holds its lease).
async fn redrive_payment(order: &PgPool, id: Uuid) -> anyhow::Result<(bool, String)> {
    let now = platform::time::now();
    let payment = sqlx::query!(
        r#"SELECT p.status::text AS "status!", p.next_attempt_at, p.locked_until
           FROM payment_transactions p JOIN orders o ON o.id = p.order_id
           WHERE o.source_order_id = $1"#,
        id
    )
    .fetch_optional(order)
    .await?;
    let Some(payment) = payment else {
        return Ok((
            false,
            "the order has no payment row: nothing to re-drive (look at the order service's log)"
                .to_owned(),
        ));
    };
    if payment.status != "PENDING" {
        return Ok((
            false,
            format!(
                "its payment is {}, not PENDING: nothing to re-drive",
                payment.status
            ),
        ));
    }
    if payment.locked_until.is_some_and(|l| l > now) {
        return Ok((
            false,
            "a gateway call for it is in flight (lease held): left alone".to_owned(),
        ));
    }
    if payment.next_attempt_at <= now {
        return Ok((
            false,
            "its PENDING payment is already due: the retry worker picks it up (is the gateway up?)"
                .to_owned(),
        ));
    }
    let changed = sqlx::query!(
        "UPDATE payment_transactions p SET next_attempt_at = $2
         FROM orders o
         WHERE p.order_id = o.id AND o.source_order_id = $1 AND p.status = 'PENDING'
           AND p.next_attempt_at > $2 AND (p.locked_until IS NULL OR p.locked_until <= $2)",
        id,
        now
    )
    .execute(order)
    .await?
    .rows_affected();
    Ok((
        changed > 0,
        if changed > 0 {
            "made its PENDING payment due now: the retry worker calls the gateway".to_owned()
        } else {
            "its payment changed meanwhile: run reconcile again".to_owned()
        },
    ))
}

/// Makes a pending refund due now.
async fn redrive_refund(order: &PgPool, id: Uuid) -> anyhow::Result<(bool, String)> {
    let now = platform::time::now();
    // Runtime-checked: the refund columns of order_db's migration 0002 (ADR 0007).
    // A worker holding the refund also keeps refund_next_attempt_at ahead, so this may
    // let a second worker ask too: harmless, the gateway refunds once per
    // `refund-<order id>` key.
    let changed = sqlx::query(
        "UPDATE payment_transactions p SET refund_next_attempt_at = $2
         FROM orders o
         WHERE p.order_id = o.id AND o.source_order_id = $1
           AND p.refund_requested_at IS NOT NULL AND p.refunded_at IS NULL
           AND (p.refund_next_attempt_at IS NULL OR p.refund_next_attempt_at > $2)",
    )
    .bind(id)
    .bind(now)
    .execute(order)
    .await
    .context("cannot update the refund in order_db")?
    .rows_affected();
    Ok((
        changed > 0,
        if changed > 0 {
            "made its pending refund due now: the refund worker asks the gateway again".to_owned()
        } else {
            "its pending refund is already due: the refund worker retries it (is the gateway up?)"
                .to_owned()
        },
    ))
}

/// Describes a targeted outbox requeue.
fn requeued(result: outbox::OrderRequeue, table: &str, what: &str) -> (bool, String) {
    if result.rows == 0 {
        (false, format!("no {what} row in {table} for this order"))
    } else if result.requeued > 0 {
        (
            true,
            format!(
                "requeued its {what} row in {table} (PENDING, due now): the relay publishes it again"
            ),
        )
    } else {
        (
            false,
            format!("its {what} row in {table} is already PENDING and due: the relay publishes it"),
        )
    }
}

/// `--repair`: re-drives what the platform can redo by itself, one action per finding,
/// and says what it did. Safe to run again: a row already due is left as it is.
/// - missing: requeue the checkout's `order_created_outbox` row (even if `PUBLISHED`);
/// - stuck: make its `PENDING` payment due now (not while a gateway call holds it);
/// - refund-pending, or amount-mismatch with a pending refund: make the refund due now;
/// - stock-not-returned: requeue the order's `orders.released` row in
///   `payment_completed_outbox`, or say that there is none;
/// - anything else: nothing automatic; the action says what to look at.
pub async fn repair(
    customer: &PgPool,
    order: &PgPool,
    report: &Report,
) -> anyhow::Result<Vec<Repair>> {
    let refunds_known = has_refund_columns(order).await?;
    let refund_ids: Vec<Uuid> = report
        .findings
        .iter()
        .filter(|f| matches!(f.kind, Kind::RefundPending | Kind::AmountMismatch))
        .filter_map(|f| f.order_id)
        .collect();
    let pending = if refunds_known && !refund_ids.is_empty() {
        // A cutoff in the future: only the refunds of these orders, whatever their age.
        let future = platform::time::now() + chrono::Duration::days(1);
        pending_refunds(order, future, &refund_ids).await?
    } else {
        HashMap::new()
    };
    let mut repairs = Vec::new();
    for f in &report.findings {
        let (changed, action) = match (f.kind, f.order_id) {
            (Kind::Missing, Some(id)) => {
                let r = outbox::requeue_order(customer, Outbox::OrderCreated, id, None).await?;
                let (changed, action) =
                    requeued(r, Outbox::OrderCreated.table(), events::ORDERS_CREATED_TOPIC);
                if r.rows == 0 {
                    (
                        false,
                        format!("{action} (published rows are deleted after a while): the checkout cannot be re-sent by opsctl"),
                    )
                } else {
                    (changed, action)
                }
            }
            (Kind::Stuck, Some(id)) => redrive_payment(order, id).await?,
            (Kind::RefundPending | Kind::AmountMismatch, Some(id)) if pending.contains_key(&id) => {
                redrive_refund(order, id).await?
            }
            (Kind::RefundPending, _) => (
                false,
                "its refund is no longer pending: nothing to do".to_owned(),
            ),
            (Kind::StockNotReturned, Some(id)) => {
                let r = outbox::requeue_order(
                    order,
                    Outbox::PaymentCompleted,
                    id,
                    Some(events::ORDERS_RELEASED_TOPIC),
                )
                .await?;
                let (changed, action) = requeued(
                    r,
                    Outbox::PaymentCompleted.table(),
                    events::ORDERS_RELEASED_TOPIC,
                );
                if r.rows == 0 {
                    (
                        false,
                        format!("{action}: nothing to re-send; return its stock by hand (runbook)"),
                    )
                } else {
                    (changed, action)
                }
            }
            (Kind::AmountMismatch, _) => (
                false,
                "not repaired: compare the order with the gateway's ledger, refund or charge by hand"
                    .to_owned(),
            ),
            (Kind::DoubleCharged, _) => (
                false,
                "not repaired: refund the extra charge at the gateway".to_owned(),
            ),
            (Kind::OrphanCharge, _) => (
                false,
                "not repaired: find where the charge came from; refund it at the gateway"
                    .to_owned(),
            ),
            (Kind::StockReturnedWrongly, _) => (
                false,
                "not repaired: correct the products' inventory by hand".to_owned(),
            ),
            (Kind::Duplicated, _) => (
                false,
                "not repaired: a constraint was bypassed; escalate".to_owned(),
            ),
            _ => (false, "not repaired: no order id".to_owned()),
        };
        repairs.push(Repair {
            kind: f.kind,
            order_id: f.order_id,
            order_number: f.order_number.clone(),
            changed,
            action,
        });
    }
    Ok(repairs)
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
        Some(fetch_ledger(settings.gateway_base(), settings.gateway_token().as_deref()).await?)
    };
    let mut report = reconcile(&customer, &order, ledger.as_ref(), &args).await?;
    if args.repair {
        report.repairs = repair(&customer, &order, &report).await?;
    }
    if out.json() {
        out.print_json(&report)?;
    } else {
        print_report(&report, out);
    }
    Ok(if report.problems() == 0 {
        Outcome::Ok
    } else {
        Outcome::ProblemsFound
    })
}

fn print_report(report: &Report, out: &Output) {
    for note in &report.notes {
        println!("note: {note}");
    }
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
    if !report.repairs.is_empty() {
        let rows = report
            .repairs
            .iter()
            .map(|r| {
                vec![
                    r.kind.label().to_owned(),
                    output::opt(r.order_number.as_deref()),
                    output::opt(r.order_id),
                    if r.changed { "yes" } else { "no" }.to_owned(),
                    r.action.clone(),
                ]
            })
            .collect();
        out.print_table(
            &["PROBLEM", "ORDER NUMBER", "ORDER ID", "CHANGED", "REPAIR"],
            rows,
        );
    }
    let count = |k| report.of_kind(k).count();
    let counts: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| k.is_problem())
        .map(|k| format!("{} {}", k.label(), count(*k)))
        .collect();
    println!(
        "{} checkout(s), {} with an order, {}; {}; refund-pending {} (informational)",
        report.checkouts,
        report.orders_matched,
        report.ledger_lines.map_or_else(
            || "ledger skipped".to_owned(),
            |n| format!("{n} ledger line(s)")
        ),
        counts.join(", "),
        count(Kind::RefundPending),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_exact_cents_and_print_with_two_decimals() {
        assert_eq!(cents(299.98), 29_998);
        assert_eq!(cents(0.1 + 0.2), 30);
        assert_eq!(money(29_998), "299.98");
        assert_eq!(money(-5), "-0.05");
    }

    #[test]
    fn a_line_of_an_older_gateway_nets_its_amount_when_it_succeeded_and_zero_otherwise() {
        let line = |status: &str, net: Option<f64>| LedgerLine {
            id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            order_number: None,
            status: status.to_owned(),
            amount: Some(10.0),
            refunded_amount: Some(4.0),
            net_amount: net,
            idempotency_key: None,
            charge_count: 1,
        };
        assert_eq!(line("SUCCEEDED", None).net_cents(), 600);
        assert_eq!(line("DECLINED", None).net_cents(), 0);
        assert_eq!(line("SUCCEEDED", Some(0.0)).net_cents(), 0);
    }

    #[test]
    fn only_a_pending_refund_is_not_a_problem() {
        let informational: Vec<Kind> = Kind::ALL.into_iter().filter(|k| !k.is_problem()).collect();
        assert_eq!(informational, [Kind::RefundPending]);
    }
}
