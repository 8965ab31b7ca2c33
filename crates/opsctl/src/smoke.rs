//! The quickstart journey against a running platform, step by step as
//! `scripts/validate-quickstart.sh` does it: both services ready, manager login, a
//! category and a product, a guest cart, checkout with an `Idempotency-Key` and its
//! replay (same response), then the order polled on the order service until `PAID`.

use crate::cli::{
    read_password_from_stdin, Settings, SmokeArgs, DEFAULT_CUSTOMER_BASE, DEFAULT_ORDER_BASE,
    SMOKE_PASSWORD_VAR,
};
use crate::output::Output;
use crate::Outcome;
use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The base URLs of a target: `local`, `compose`, or an env file setting
/// `CUSTOMER_BASE_URL` and `ORDER_BASE_URL`.
pub fn target_bases(target: &str) -> anyhow::Result<(String, String)> {
    match target {
        "local" | "compose" => Ok((DEFAULT_CUSTOMER_BASE.into(), DEFAULT_ORDER_BASE.into())),
        path => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("--target '{path}' is neither local, compose nor a readable env file")
            })?;
            let mut customer = None;
            let mut order = None;
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ").trim();
                let Some((name, value)) = line.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches(['"', '\'']).to_owned();
                match name.trim() {
                    "CUSTOMER_BASE_URL" => customer = Some(value),
                    "ORDER_BASE_URL" => order = Some(value),
                    _ => {}
                }
            }
            Ok((
                customer.with_context(|| format!("{path} must set CUSTOMER_BASE_URL"))?,
                order.with_context(|| format!("{path} must set ORDER_BASE_URL"))?,
            ))
        }
    }
}

/// A passed step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub millis: u128,
}

/// The outcome of a smoke run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeReport {
    pub customer_base: String,
    pub order_base: String,
    pub correlation_id: String,
    pub order_number: String,
    pub steps: Vec<Step>,
}

struct Journey<'a> {
    http: reqwest::Client,
    correlation: String,
    steps: Vec<Step>,
    out: &'a Output,
}

impl Journey<'_> {
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, String)> {
        let mut request = self
            .http
            .request(method, url)
            .header("X-Correlation-ID", &self.correlation);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    async fn expect(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        expected: u16,
    ) -> anyhow::Result<(Value, String)> {
        let (status, text) = self.call(method, url, body, headers).await?;
        anyhow::ensure!(
            status.as_u16() == expected,
            "expected HTTP {expected}, got {}: {}",
            status.as_u16(),
            crate::output::truncate(&text, 300)
        );
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((value, text))
    }

    fn passed(&mut self, name: &str, started: Instant) {
        if !self.out.json() {
            println!("  ok  {name}");
        }
        self.steps.push(Step {
            name: name.to_owned(),
            millis: started.elapsed().as_millis(),
        });
    }
}

fn field<'v>(value: &'v Value, name: &str) -> anyhow::Result<&'v str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("no {name} in {value}"))
}

/// Runs one step of the journey `$j`: times it, names it in the error, and prints that
/// it passed. A macro, not a method: the step's body borrows the journey to call, and
/// recording the step borrows it to write.
macro_rules! step {
    ($j:ident, $name:expr, $body:expr) => {{
        let started = Instant::now();
        let result = async { $body }
            .await
            .with_context(|| format!("step '{}'", $name))?;
        $j.passed($name, started);
        result
    }};
}

/// Runs the journey; the error names the step that failed.
pub async fn smoke(
    customer: &str,
    order: &str,
    username: &str,
    password: &str,
    timeout: Duration,
    out: &Output,
) -> anyhow::Result<SmokeReport> {
    let run_id = uuid::Uuid::new_v4();
    let mut j = Journey {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?,
        correlation: format!("smoke-{run_id}"),
        steps: Vec::new(),
        out,
    };
    if !out.json() {
        println!(
            "smoke against {customer} and {order} (correlation id {})",
            j.correlation
        );
    }
    wait_until_ready(&mut j, customer, order).await?;
    let bearer = format!(
        "Bearer {}",
        log_in(&mut j, customer, username, password).await?
    );
    let product_id = create_product(&mut j, customer, &bearer, run_id).await?;
    let session = fill_cart(&mut j, customer, &product_id, run_id).await?;
    let order_number = check_out(&mut j, customer, &session, run_id).await?;
    wait_until_paid(&mut j, order, &order_number, timeout).await?;
    Ok(SmokeReport {
        customer_base: customer.to_owned(),
        order_base: order.to_owned(),
        correlation_id: j.correlation,
        order_number,
        steps: j.steps,
    })
}

/// Both services answer their readiness probe.
async fn wait_until_ready(j: &mut Journey<'_>, customer: &str, order: &str) -> anyhow::Result<()> {
    step!(j, "customer-facing-service ready", {
        j.expect(
            Method::GET,
            &format!("{customer}/actuator/health/readiness"),
            None,
            &[],
            200,
        )
        .await
    });
    step!(j, "order-management-service ready", {
        j.expect(
            Method::GET,
            &format!("{order}/actuator/health/readiness"),
            None,
            &[],
            200,
        )
        .await
    });
    Ok(())
}

/// The manager's access token.
async fn log_in(
    j: &mut Journey<'_>,
    customer: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    Ok(step!(j, "manager login", {
        let body = json!({"username": username, "password": password});
        let (v, _) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/auth/login"),
                Some(&body),
                &[],
                200,
            )
            .await?;
        field(&v, "accessToken").map(str::to_owned)
    }))
}

/// A category and a product of this run, as a manager; the product's id once the
/// catalogue shows it.
async fn create_product(
    j: &mut Journey<'_>,
    customer: &str,
    bearer: &str,
    run_id: uuid::Uuid,
) -> anyhow::Result<String> {
    let auth = [("Authorization", bearer)];
    let category_id = step!(j, "create category", {
        let body = json!({"name": format!("Smoke {run_id}"), "description": "opsctl smoke"});
        let (v, _) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/categories"),
                Some(&body),
                &auth,
                201,
            )
            .await?;
        field(&v, "id").map(str::to_owned)
    });
    let sku = format!("SMOKE-{}", &run_id.simple().to_string()[..12]).to_ascii_uppercase();
    let product_id = step!(j, "create product", {
        let body = json!({"sku": sku, "name": "Smoke widget", "description": "smoke", "price": 49.99,
                          "inventoryQuantity": 10, "categoryId": category_id});
        let (v, _) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/products"),
                Some(&body),
                &auth,
                201,
            )
            .await?;
        field(&v, "id").map(str::to_owned)
    });
    step!(j, "product visible in the catalogue", {
        let (v, _) = j
            .expect(
                Method::GET,
                &format!("{customer}/api/v1/products/{product_id}"),
                None,
                &[],
                200,
            )
            .await?;
        anyhow::ensure!(field(&v, "sku")? == sku, "wrong product returned: {v}");
        anyhow::Ok(())
    });
    Ok(product_id)
}

/// A cart of this run holding two of the product; its session id.
async fn fill_cart(
    j: &mut Journey<'_>,
    customer: &str,
    product_id: &str,
    run_id: uuid::Uuid,
) -> anyhow::Result<String> {
    let session = format!("smoke-session-{run_id}");
    step!(j, "add to cart", {
        let body = json!({"productId": product_id, "quantity": 2});
        let (v, _) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/carts/{session}/items"),
                Some(&body),
                &[],
                200,
            )
            .await?;
        let lines = v.get("items").and_then(Value::as_array).map_or(0, Vec::len);
        anyhow::ensure!(lines == 1, "cart has no line: {v}");
        anyhow::Ok(())
    });
    Ok(session)
}

/// Checks the cart out, then again with the same key, which must answer the same;
/// the order number.
async fn check_out(
    j: &mut Journey<'_>,
    customer: &str,
    session: &str,
    run_id: uuid::Uuid,
) -> anyhow::Result<String> {
    let checkout = json!({"sessionId": session, "customerInfo": {"name": "Ada Lovelace", "email": "ada@example.com",
        "phone": "+442071234567", "shippingAddress": {"street": "12 St James Square", "city": "London",
        "state": "LDN", "postalCode": "SW1Y 4JH", "country": "GBR"}}});
    let key = format!("smoke-{run_id}");
    let idempotency = [("Idempotency-Key", key.as_str())];
    let (order_number, first) = step!(j, "checkout", {
        let (v, text) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/checkout"),
                Some(&checkout),
                &idempotency,
                201,
            )
            .await?;
        anyhow::Ok((field(&v, "orderNumber")?.to_owned(), text))
    });
    step!(j, "checkout replay returns the same response", {
        let (_, text) = j
            .expect(
                Method::POST,
                &format!("{customer}/api/v1/checkout"),
                Some(&checkout),
                &idempotency,
                201,
            )
            .await?;
        anyhow::ensure!(text == first, "replay differs: {text}");
        anyhow::Ok(())
    });
    Ok(order_number)
}

/// Polls the order service until the order is PAID; fails when it FAILED or
/// `timeout` passed.
async fn wait_until_paid(
    j: &mut Journey<'_>,
    order: &str,
    order_number: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let name = format!("order {order_number} PAID");
    step!(j, name.as_str(), {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("none");
        loop {
            let (status, text) = j
                .call(
                    Method::GET,
                    &format!("{order}/api/v1/orders/{order_number}"),
                    None,
                    &[],
                )
                .await?;
            if status == StatusCode::OK {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                last = v
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                match last.as_str() {
                    "PAID" => break,
                    "FAILED" => anyhow::bail!("order failed: {text}"),
                    _ => {}
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "order not PAID after {}s (last status '{last}', HTTP {})",
                timeout.as_secs(),
                status.as_u16()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::Ok(())
    });
    Ok(())
}

/// Runs `opsctl smoke`.
pub async fn run(settings: &Settings, args: SmokeArgs, out: &Output) -> anyhow::Result<Outcome> {
    let (customer, order) = target_bases(&args.target)?;
    let customer = settings.customer_base.clone().unwrap_or(customer);
    let order = settings.order_base.clone().unwrap_or(order);
    let password = if args.password_stdin {
        read_password_from_stdin()?
    } else {
        match std::env::var(SMOKE_PASSWORD_VAR) {
            Ok(password) if !password.is_empty() => password,
            _ => anyhow::bail!(
                "no password for {}: set {SMOKE_PASSWORD_VAR} or give it on stdin with --password-stdin",
                args.username
            ),
        }
    };
    let report = smoke(
        customer.trim_end_matches('/'),
        order.trim_end_matches('/'),
        &args.username,
        &password,
        args.timeout,
        out,
    )
    .await?;
    if out.json() {
        out.print_json(&report)?;
    } else {
        println!("smoke passed: order {} is PAID", report.order_number);
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_compose_targets_use_the_default_ports() {
        assert_eq!(
            target_bases("local").unwrap(),
            (
                "http://127.0.0.1:8080".to_owned(),
                "http://127.0.0.1:8081".to_owned()
            )
        );
        assert!(target_bases("compose").is_ok());
    }

    #[test]
    fn an_env_file_target_names_both_bases() {
        let path = std::env::temp_dir().join(format!("opsctl-smoke-{}.env", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "# staging\nexport CUSTOMER_BASE_URL=\"https://shop\"\nORDER_BASE_URL=https://orders\n",
        )
        .unwrap();
        let bases = target_bases(path.to_str().unwrap()).unwrap();
        assert_eq!(
            bases,
            ("https://shop".to_owned(), "https://orders".to_owned())
        );
        std::fs::write(&path, "CUSTOMER_BASE_URL=https://shop\n").unwrap();
        assert!(target_bases(path.to_str().unwrap()).is_err());
        std::fs::remove_file(path).unwrap();
        assert!(target_bases("/nonexistent/target.env").is_err());
    }
}
