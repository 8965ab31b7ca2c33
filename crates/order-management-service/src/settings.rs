//! Settings of the order service: flags and `ORDER_SERVICE_*` variables (the shared
//! ones also read their plain names, e.g. `KAFKA_BOOTSTRAP_SERVERS`, `JWT_SECRET`).

use platform::config::{CommonSettings, DatabaseSettings, JwtSettings, KafkaSettings};
use std::time::Duration;

/// The order service's settings.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "order-management-service",
    version,
    about = "Order management service: consumes orders.created, pays, serves orders"
)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub kafka: KafkaSettings,
    #[command(flatten)]
    pub jwt: JwtSettings,
    #[command(flatten)]
    pub consumer: ConsumerSettings,
    #[command(flatten)]
    pub payment: PaymentSettings,
    #[command(flatten)]
    pub client_addresses: platform::client::ClientAddressSettings,
    #[command(flatten)]
    pub lookup_limits: platform::limit::LookupLimitSettings,
    /// Base URL of the customer-facing service: an order this service does not have
    /// (yet) is looked up in what its checkout recorded there, so the lookup never
    /// answers 404 for a checked-out order.
    #[arg(long = "customer-service-url", env = "CUSTOMER_SERVICE_URL",
          default_value = "http://127.0.0.1:8080", value_parser = parse_url)]
    pub customer_service_url: String,
    /// Milliseconds that lookup waits for the customer-facing service.
    #[arg(long = "customer-service-timeout-ms", env = "CUSTOMER_SERVICE_TIMEOUT_MS",
          default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub customer_service_timeout_ms: u64,
    /// Comma-separated origins whose pages may call this API from a browser (GET, POST):
    /// the customer service's storefront and back office read and manage orders here.
    #[arg(
        long = "cors-allowed-origins",
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080,http://127.0.0.1:8080"
    )]
    pub cors_allowed_origins: Vec<String>,
}

/// What the service consumes, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumerSettings {
    /// Topic of OrderCreated events.
    #[arg(long = "orders-created-topic", env = "KAFKA_TOPICS_ORDERS_CREATED",
          default_value = events::ORDERS_CREATED_TOPIC)]
    pub orders_created_topic: String,
    /// Topic of PaymentCompleted events (produced and consumed here).
    #[arg(long = "payments-completed-topic", env = "KAFKA_TOPICS_PAYMENTS_COMPLETED",
          default_value = events::PAYMENTS_COMPLETED_TOPIC)]
    pub payments_completed_topic: String,
    /// Topic of OrderReleased events (produced here: an order ended FAILED or CANCELLED
    /// and its stock goes back).
    #[arg(long = "orders-released-topic", env = "KAFKA_TOPICS_ORDERS_RELEASED",
          default_value = events::ORDERS_RELEASED_TOPIC)]
    pub orders_released_topic: String,
    /// Consumer group of both consumers.
    #[arg(long = "consumer-group", env = "KAFKA_CONSUMER_GROUP_ID",
          default_value = events::ORDER_SERVICE_GROUP)]
    pub group_id: String,
    /// Consumer session timeout; a dead consumer's partitions move after this long.
    #[arg(long = "kafka-session-timeout-ms", env = "KAFKA_SESSION_TIMEOUT_MS",
          default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1000..=300_000))]
    pub session_timeout_ms: u64,
    /// Longest time the broker may hold a fetch of `orders.created` with no new records:
    /// the wait a new order may spend in the broker. On a broker that answers a fetch
    /// as soon as records arrive (Kafka, Redpanda) it adds no latency; the development
    /// broker answers only when the wait ends, polling its storage meanwhile, so a
    /// shorter wait is faster orders for more of the broker's CPU (docs/performance.md).
    #[arg(long = "kafka-fetch-wait-ms", env = "KAFKA_FETCH_WAIT_MS",
          default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    pub fetch_wait_ms: u64,
    /// The same for `payments.completed`, whose records are only checked: nothing waits
    /// for them, so the broker is spared the short polls.
    #[arg(long = "kafka-payments-completed-fetch-wait-ms",
          env = "KAFKA_PAYMENTS_COMPLETED_FETCH_WAIT_MS",
          default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    pub payments_completed_fetch_wait_ms: u64,
    /// Records each consumer handles at once. Creating an order is one round trip to
    /// `order_db`; handled one by one, a backlog drains no faster than one round trip
    /// after another (ADR 0010). Offsets are still committed in consumption order.
    #[arg(long = "consumer-max-in-flight", env = "KAFKA_CONSUMER_MAX_IN_FLIGHT",
          default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_in_flight: u16,
    /// Attempts for a record that fails with a retryable error before it is dead-lettered.
    #[arg(long = "consumer-max-attempts", env = "KAFKA_CONSUMER_MAX_ATTEMPTS",
          default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub record_max_attempts: u32,
    /// Seconds a record waits out transient database trouble (an outage, a failover,
    /// no free connection, a deadlock) before its attempts above, and then the DLQ.
    #[arg(long = "consumer-transient-budget-secs", env = "KAFKA_CONSUMER_TRANSIENT_BUDGET_SECS",
          default_value_t = 240, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub transient_budget_secs: u64,
    /// Seconds a `payment_completed_outbox` row keeps being retried before it is marked
    /// FAILED for an operator: a broker outage shorter than this fails nothing (6 h).
    #[arg(long = "outbox-max-age-secs", env = "OUTBOX_MAX_AGE_SECS",
          default_value_t = 21_600, value_parser = clap::value_parser!(u64).range(0..=30 * 24 * 3600))]
    pub outbox_max_age_secs: u64,
    /// Days a processed event id is kept for deduplication.
    #[arg(long = "processed-events-retention-days", env = "PROCESSED_EVENTS_RETENTION_DAYS",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub processed_events_retention_days: u64,
    /// Run the consumers (off: an API-only replica).
    #[arg(long = "consumers-enabled", env = "CONSUMERS_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub consumers_enabled: bool,
}

/// How payments are made and resumed.
#[derive(clap::Args, Debug, Clone)]
pub struct PaymentSettings {
    /// Base URL of the payment gateway.
    #[arg(long = "payment-gateway-url", env = "PAYMENT_GATEWAY_URL",
          default_value = "http://127.0.0.1:9090", value_parser = parse_url)]
    pub gateway_url: String,
    /// The gateway's service token (its PAYMENT_GATEWAY_SERVICE_TOKEN), sent as a bearer
    /// token on every call.
    #[arg(long = "payment-gateway-token", env = "PAYMENT_GATEWAY_TOKEN")]
    pub gateway_token: platform::config::Secret,
    /// PEM file of the CA that signed an https:// gateway's certificate, trusted besides
    /// Mozilla's roots (a private CA).
    #[arg(long = "payment-gateway-ca-file", env = "PAYMENT_GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<std::path::PathBuf>,
    /// Timeout of one gateway call, in milliseconds.
    #[arg(long = "payment-timeout-ms", env = "PAYMENT_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(10..=120_000))]
    pub timeout_ms: u64,
    /// Gateway calls per payment attempt (transport errors and 5xx are retried).
    #[arg(long = "payment-max-attempts", env = "PAYMENT_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
    /// First delay between gateway calls of one attempt; doubled each time.
    #[arg(
        long = "payment-retry-backoff-ms",
        env = "PAYMENT_RETRY_BACKOFF_MS",
        default_value_t = 1000
    )]
    pub retry_backoff_ms: u64,
    /// How long the `paymentService` breaker stays open before it lets trial calls through.
    #[arg(
        long = "payment-breaker-open-ms",
        env = "PAYMENT_BREAKER_OPEN_MS",
        default_value_t = 30_000
    )]
    pub breaker_open_ms: u64,
    /// How often the retry worker looks for payments the gateway did not answer.
    #[arg(long = "payment-retry-interval-ms", env = "PAYMENT_RETRY_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub retry_interval_ms: u64,
    /// Longest wait between two resumptions of one unanswered payment.
    #[arg(
        long = "payment-retry-max-delay-ms",
        env = "PAYMENT_RETRY_MAX_DELAY_MS",
        default_value_t = 30_000
    )]
    pub retry_max_delay_ms: u64,
    /// Seconds a payment may stay unanswered by the gateway before it ends FAILED (its
    /// order FAILED, its stock released, a refund by key requested).
    #[arg(long = "payment-deadline-secs", env = "PAYMENT_DEADLINE_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub deadline_secs: u64,
    /// Payments in flight at once in this instance.
    #[arg(long = "payment-concurrency", env = "PAYMENT_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

fn parse_url(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

impl PaymentSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }
    pub fn breaker_open(&self) -> Duration {
        Duration::from_millis(self.breaker_open_ms)
    }
    pub fn retry_interval(&self) -> Duration {
        Duration::from_millis(self.retry_interval_ms)
    }
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline_secs)
    }
    /// How long one payment attempt may hold its claim: every call timing out, plus
    /// every backoff, plus a margin.
    pub fn claim_lease(&self) -> Duration {
        let calls = self.timeout() * self.max_attempts;
        let backoffs: Duration = (0..self.max_attempts)
            .map(|i| self.retry_backoff() * 2u32.saturating_pow(i))
            .sum();
        calls + backoffs + Duration::from_secs(5)
    }
}

impl Settings {
    /// Parses settings from explicit flags only (tests); the required ones the flags do
    /// not give are those of a test: environment `test` and a placeholder gateway token.
    pub fn from_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        let argv = [
            "order-management-service",
            "--environment=test",
            "--payment-gateway-token=test-service-token-REPLACE-ME-0123456789abcdef",
        ]
        .into_iter()
        .map(std::ffi::OsString::from)
        .chain(args.into_iter().map(Into::into));
        platform::config::parse_from::<Self>(crate::ENV_PREFIX, argv, |_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let s = Settings::from_args(Vec::<String>::new()).expect("defaults");
        assert_eq!(s.consumer.orders_created_topic, "orders.created");
        assert_eq!(s.consumer.payments_completed_topic, "payments.completed");
        assert_eq!(s.consumer.orders_released_topic, "orders.released");
        assert_eq!(s.payment.deadline(), Duration::from_secs(900));
        assert_eq!(s.consumer.group_id, "order-service-group");
        assert_eq!(s.payment.gateway_url, "http://127.0.0.1:9090");
        assert_eq!(s.payment.breaker_open(), Duration::from_secs(30));
    }

    #[test]
    fn topics_and_group_are_read_from_prefixed_variables() {
        let env = std::collections::HashMap::from([
            ("ORDER_SERVICE_KAFKA_TOPICS_ORDERS_CREATED", "a"),
            ("ORDER_SERVICE_KAFKA_TOPICS_PAYMENTS_COMPLETED", "b"),
            ("ORDER_SERVICE_KAFKA_CONSUMER_GROUP_ID", "g"),
            ("ORDER_SERVICE_KAFKA_TOPICS_ORDERS_RELEASED", "r"),
            ("ORDER_SERVICE_PAYMENT_DEADLINE_SECS", "60"),
            ("ENVIRONMENT", "test"),
            (
                "ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN",
                "a-token-of-at-least-32-characters-0123",
            ),
        ]);
        let s = platform::config::parse_from::<Settings>(crate::ENV_PREFIX, ["oms"], |name| {
            env.get(name).map(|v| (*v).to_owned())
        })
        .expect("parsed");
        assert_eq!(s.consumer.orders_created_topic, "a");
        assert_eq!(s.consumer.payments_completed_topic, "b");
        assert_eq!(s.consumer.group_id, "g");
        assert_eq!(s.consumer.orders_released_topic, "r");
        assert_eq!(s.payment.deadline(), Duration::from_secs(60));
    }

    #[test]
    fn the_service_does_not_start_without_the_gateways_token() {
        let err = platform::config::parse_from::<Settings>(crate::ENV_PREFIX, ["oms"], |name| {
            (name == "ENVIRONMENT").then(|| "local".to_owned())
        })
        .expect_err("no token");
        assert!(
            err.to_string()
                .contains("ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_gateway_url_is_a_configuration_error() {
        assert!(Settings::from_args(["--payment-gateway-url", "ftp://x"]).is_err());
    }
}
