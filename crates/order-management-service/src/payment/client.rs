//! The payment gateway's HTTP client: one charge per order and one refund per order,
//! each under its own `Idempotency-Key` (the checkout's `orderId`, and `refund-<orderId>`),
//! a timeout per call, retries with exponential backoff for transport errors, 408, 429
//! and 5xx answers, every call through the `paymentService` breaker.
//!
//! Only an explicit `DECLINED` answer is a decline. Any other 4xx (401, 403, 404, 409,
//! 422, ...) means the gateway cannot be used as configured: it is logged at error,
//! counts as a breaker failure and leaves the payment for a later try, because failing
//! an order the customer may well be able to pay would be wrong.

use super::breaker::CircuitBreaker;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Reason given while the breaker refuses calls, as the original's fallback words it.
pub const BREAKER_OPEN_REASON: &str = "Payment service unavailable (circuit breaker open)";

/// What to charge.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeOrder {
    /// The checkout's order id (`orders.source_order_id`): also the idempotency key.
    pub order_id: Uuid,
    pub order_number: String,
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    pub customer_email: String,
}

/// How a payment attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargeOutcome {
    /// The gateway charged the order.
    Approved {
        gateway_payment_id: String,
        external_transaction_id: String,
    },
    /// The gateway (or the issuer) said no; the order fails.
    Declined {
        gateway_payment_id: Option<String>,
        reason: String,
    },
    /// No usable answer (breaker open, timeouts, 5xx, other 4xx): try again later.
    Unavailable { error: String, called: bool },
}

/// How a refund request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundOutcome {
    /// The gateway gave `amount` back.
    Refunded { refund_id: String, amount: Decimal },
    /// The key had no charge: nothing to give back, and the key can no longer charge.
    NothingCharged { refund_id: String },
    /// No usable answer: ask again later.
    Unavailable { error: String, called: bool },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundRequest<'a> {
    payment_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayRefund {
    id: String,
    status: String,
    #[serde(default, with = "rust_decimal::serde::float_option")]
    amount: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayPayment {
    id: String,
    status: String,
    external_transaction_id: Option<String>,
    failure_reason: Option<String>,
}

/// Calls the payment gateway.
#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    base_url: String,
    breaker: CircuitBreaker,
    max_attempts: u32,
    backoff: Duration,
}

/// The result of one HTTP call.
enum Attempt<T> {
    /// A definite answer.
    Done(T),
    /// Worth another call within this attempt (timeouts, 408, 429, 5xx).
    Transient(String),
    /// The gateway refused the request itself (a 4xx that is not a decline): no use
    /// calling again now, but a failure for the breaker and never a decline.
    Unusable(String),
}

impl Attempt<std::convert::Infallible> {
    /// A failure of [`GatewayClient::send`] as the attempt of any call.
    fn widen<T>(self) -> Attempt<T> {
        match self {
            Self::Done(never) => match never {},
            Self::Transient(e) => Attempt::Transient(e),
            Self::Unusable(e) => Attempt::Unusable(e),
        }
    }
}

/// The CA certificates in `path` (PEM), for a gateway behind a private CA; a start-up
/// error naming the setting when they cannot be used.
fn gateway_cas(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let setting = "ORDER_SERVICE_PAYMENT_GATEWAY_CA_FILE";
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{setting} {} cannot be read: {e}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        anyhow::anyhow!("{setting} {} is not a PEM certificate: {e}", path.display())
    })?;
    if certificates.is_empty() {
        anyhow::bail!("{setting} {} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}
impl GatewayClient {
    /// A client of the gateway at `base_url`, sending `token` (its service token) on every
    /// call.
    pub fn new(
        base_url: &str,
        token: &platform::config::Secret,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
        max_attempts: u32,
        backoff: Duration,
        breaker: CircuitBreaker,
    ) -> anyhow::Result<Self> {
        let mut authorization =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| anyhow::anyhow!("the payment gateway token must be visible ASCII"))?;
        authorization.set_sensitive(true);
        let headers = reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            authorization,
        )]);
        let mut http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)));
        if let Some(path) = ca_file {
            for certificate in gateway_cas(path)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            breaker,
            max_attempts: max_attempts.max(1),
            backoff,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Charges `order`, retrying transient failures while the breaker allows.
    pub async fn charge(&self, order: &ChargeOrder) -> ChargeOutcome {
        let key = order.order_id.to_string();
        match self
            .through_breaker("charge", &key, || self.call(order))
            .await
        {
            Ok(outcome) => outcome,
            Err((error, called)) => ChargeOutcome::Unavailable { error, called },
        }
    }

    /// Asks the gateway to give back what it charged under `payment_key` (all that is
    /// left), with `refund_key` as the refund's own idempotency key. If nothing was
    /// charged under `payment_key`, the gateway closes that key instead.
    pub async fn refund(
        &self,
        payment_key: &str,
        refund_key: &str,
        reason: Option<&str>,
    ) -> RefundOutcome {
        let body = RefundRequest {
            payment_key,
            reason,
        };
        let call = || self.call_refund(refund_key, &body);
        match self.through_breaker("refund", refund_key, call).await {
            Ok(outcome) => outcome,
            Err((error, called)) => RefundOutcome::Unavailable { error, called },
        }
    }

    /// Makes `call` up to `max_attempts` times while it fails transiently and the
    /// breaker lets it through. `Err((error, called))` when there was no usable answer.
    async fn through_breaker<T, F, Fut>(
        &self,
        what: &str,
        key: &str,
        call: F,
    ) -> Result<T, (String, bool)>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut called = false;
        let mut delay = self.backoff;
        let mut last_error = BREAKER_OPEN_REASON.to_owned();
        for attempt in 1..=self.max_attempts {
            let Some(permit) = self.breaker.try_acquire() else {
                let error = if called {
                    format!("{BREAKER_OPEN_REASON}: {last_error}")
                } else {
                    BREAKER_OPEN_REASON.to_owned()
                };
                return Err((error, called));
            };
            called = true;
            match call().await {
                Attempt::Done(outcome) => {
                    permit.success();
                    return Ok(outcome);
                }
                Attempt::Unusable(error) => {
                    permit.failure();
                    return Err((error, called));
                }
                Attempt::Transient(error) => {
                    permit.failure();
                    tracing::warn!(
                        key = %key, attempt, error = %error,
                        "payment gateway {what} call failed"
                    );
                    last_error = error;
                }
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err((last_error, called))
    }

    /// Sends `request` and sorts out the transport failures and non-2xx answers that
    /// are not the endpoint's business answer.
    async fn send(
        &self,
        what: &str,
        key: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Attempt<std::convert::Infallible>> {
        let response = match platform::context::propagate(request).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(Attempt::Transient("payment gateway timed out".into()))
            }
            Err(e) => {
                return Err(Attempt::Transient(format!(
                    "payment gateway unreachable: {e}"
                )))
            }
        };
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            return Err(Attempt::Transient(format!(
                "payment gateway answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            tracing::error!(key = %key, status = status.as_u16(), body = %body,
                "payment gateway refused the {what} request; it is unusable until fixed");
            return Err(Attempt::Unusable(format!(
                "payment gateway refused the {what} request (HTTP {})",
                status.as_u16()
            )));
        }
        Ok(response)
    }

    async fn call(&self, order: &ChargeOrder) -> Attempt<ChargeOutcome> {
        let key = order.order_id.to_string();
        let request = self
            .http
            .post(format!("{}/api/v1/payments", self.base_url))
            .header("Idempotency-Key", &key)
            .json(order);
        let response = match self.send("charge", &key, request).await {
            Ok(response) => response,
            Err(failed) => return failed.widen(),
        };
        let payment: GatewayPayment = match response.json().await {
            Ok(payment) => payment,
            Err(e) if e.is_timeout() => {
                return Attempt::Transient("payment gateway timed out".into())
            }
            Err(e) => return Attempt::Transient(format!("unreadable payment gateway answer: {e}")),
        };
        match payment.status.as_str() {
            "SUCCEEDED" => match payment.external_transaction_id {
                Some(external_transaction_id) => Attempt::Done(ChargeOutcome::Approved {
                    gateway_payment_id: payment.id,
                    external_transaction_id,
                }),
                None => {
                    Attempt::Transient("payment gateway approved without a transaction id".into())
                }
            },
            "DECLINED" => Attempt::Done(ChargeOutcome::Declined {
                gateway_payment_id: Some(payment.id),
                reason: payment
                    .failure_reason
                    .unwrap_or_else(|| "Payment declined".to_owned()),
            }),
            other => {
                Attempt::Transient(format!("unknown payment status '{other}' from the gateway"))
            }
        }
    }

    async fn call_refund(
        &self,
        refund_key: &str,
        body: &RefundRequest<'_>,
    ) -> Attempt<RefundOutcome> {
        let request = self
            .http
            .post(format!("{}/api/v1/refunds", self.base_url))
            .header("Idempotency-Key", refund_key)
            .json(body);
        let response = match self.send("refund", refund_key, request).await {
            Ok(response) => response,
            Err(failed) => return failed.widen(),
        };
        let refund: GatewayRefund = match response.json().await {
            Ok(refund) => refund,
            Err(e) if e.is_timeout() => {
                return Attempt::Transient("payment gateway timed out".into())
            }
            Err(e) => return Attempt::Transient(format!("unreadable refund answer: {e}")),
        };
        match refund.status.as_str() {
            "REFUNDED" => Attempt::Done(RefundOutcome::Refunded {
                refund_id: refund.id,
                amount: refund.amount.unwrap_or_default(),
            }),
            "NOTHING_CHARGED" => Attempt::Done(RefundOutcome::NothingCharged {
                refund_id: refund.id,
            }),
            other => {
                Attempt::Transient(format!("unknown refund status '{other}' from the gateway"))
            }
        }
    }

    /// The `paymentGateway` health component: the gateway's own health endpoint answers.
    pub fn health_indicator(&self) -> impl platform::actuator::HealthIndicator {
        let http = self.http.clone();
        let url = format!("{}/actuator/health", self.base_url);
        platform::actuator::FnIndicator::new("paymentGateway", false, move || {
            let http = http.clone();
            let url = url.clone();
            Box::pin(async move {
                use platform::actuator::ComponentHealth;
                let result = http
                    .get(&url)
                    .timeout(Duration::from_millis(1500))
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().is_success() => {
                        ComponentHealth::up().with_detail("url", url)
                    }
                    Ok(r) => ComponentHealth::down_because("unexpected HTTP status")
                        .with_detail("httpStatus", r.status().as_u16())
                        .with_detail("url", url),
                    Err(e) => ComponentHealth::down(e).with_detail("url", url),
                }
            })
        })
    }
}
