//! The payment gateway's HTTP client: one charge per order (the order id is the
//! `Idempotency-Key`), a timeout per call, retries with exponential backoff for
//! transport errors and 5xx answers, every call through the `paymentService` breaker.

use super::breaker::CircuitBreaker;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Reason given while the breaker refuses calls, as the original's fallback words it.
pub const BREAKER_OPEN_REASON: &str = "Payment service unavailable (circuit breaker open)";

/// What to charge.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeOrder {
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
    /// No answer (breaker open, timeouts, 5xx): try again later.
    Unavailable { error: String, called: bool },
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

enum Attempt {
    Done(ChargeOutcome),
    Transient(String),
}

impl GatewayClient {
    pub fn new(
        base_url: &str,
        timeout: Duration,
        max_attempts: u32,
        backoff: Duration,
        breaker: CircuitBreaker,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()?;
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
        let mut called = false;
        let mut delay = self.backoff;
        let mut last_error = BREAKER_OPEN_REASON.to_owned();
        for attempt in 1..=self.max_attempts {
            let Some(permit) = self.breaker.try_acquire() else {
                return ChargeOutcome::Unavailable {
                    error: if called {
                        format!("{BREAKER_OPEN_REASON}: {last_error}")
                    } else {
                        BREAKER_OPEN_REASON.to_owned()
                    },
                    called,
                };
            };
            called = true;
            match self.call(order).await {
                Attempt::Done(outcome) => {
                    permit.success();
                    return outcome;
                }
                Attempt::Transient(error) => {
                    permit.failure();
                    tracing::warn!(
                        orderId = %order.order_id, attempt, error = %error,
                        "payment gateway call failed"
                    );
                    last_error = error;
                }
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        ChargeOutcome::Unavailable {
            error: last_error,
            called,
        }
    }

    async fn call(&self, order: &ChargeOrder) -> Attempt {
        let request = self
            .http
            .post(format!("{}/api/v1/payments", self.base_url))
            .header("Idempotency-Key", order.order_id.to_string())
            .json(order);
        let response = match platform::context::propagate(request).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Attempt::Transient("payment gateway timed out".into())
            }
            Err(e) => return Attempt::Transient(format!("payment gateway unreachable: {e}")),
        };
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            return Attempt::Transient(format!(
                "payment gateway answered HTTP {}",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            tracing::error!(orderId = %order.order_id, status = status.as_u16(), body = %body,
                "payment gateway refused the charge request");
            return Attempt::Done(ChargeOutcome::Declined {
                gateway_payment_id: None,
                reason: format!(
                    "Payment gateway refused the request (HTTP {})",
                    status.as_u16()
                ),
            });
        }
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
                    Ok(r) => ComponentHealth::down(format!("HTTP {}", r.status().as_u16()))
                        .with_detail("url", url),
                    Err(e) => ComponentHealth::down(e).with_detail("url", url),
                }
            })
        })
    }
}
