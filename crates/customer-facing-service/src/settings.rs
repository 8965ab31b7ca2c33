//! The service's settings: platform's shared groups plus Redis, the topic, the
//! `orders.released` consumer and the knobs of the background jobs. Every one is a `--flag` and a
//! `CUSTOMER_SERVICE_<NAME>` variable (see `platform::config`).

use clap::Parser;
use platform::config::{CommonSettings, DatabaseSettings, JwtSettings, KafkaSettings, Secret};

/// Everything the customer-facing service reads at start-up.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "customer-facing-service",
    about = "Catalogue, guest carts and checkout."
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
    pub redis: RedisSettings,
    #[command(flatten)]
    pub consumer: ConsumerSettings,
    #[command(flatten)]
    pub client_addresses: platform::client::ClientAddressSettings,
    #[command(flatten)]
    pub lookup_limits: platform::limit::LookupLimitSettings,
    /// Topic the order outbox publishes to.
    #[arg(
        long = "orders-created-topic",
        env = "KAFKA_TOPICS_ORDERS_CREATED",
        default_value = events::ORDERS_CREATED_TOPIC
    )]
    pub orders_created_topic: String,
    /// Seconds between runs of the job that deletes expired idempotency keys and carts.
    #[arg(
        long = "cleanup-interval-secs",
        env = "CLEANUP_INTERVAL_SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub cleanup_interval_secs: u64,
    /// Milliseconds the producer tries to deliver one event before the attempt fails
    /// (the outbox retries it later).
    #[arg(
        long = "kafka-delivery-timeout-ms",
        env = "KAFKA_DELIVERY_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(100..=300_000)
    )]
    pub delivery_timeout_ms: u64,
    /// Seconds an outbox row keeps being retried before it is marked FAILED for an
    /// operator: a broker outage shorter than this fails nothing (default 6 h).
    #[arg(
        long = "outbox-max-age-secs",
        env = "OUTBOX_MAX_AGE_SECS",
        default_value_t = 21_600,
        value_parser = clap::value_parser!(u64).range(0..=30 * 24 * 3600)
    )]
    pub outbox_max_age_secs: u64,
    /// Base URL of the order service, whose order lookup this service's
    /// `GET /api/v1/orders/{orderNumber}` passes on.
    #[arg(
        long = "order-service-url",
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub order_service_url: String,
    /// Milliseconds the order lookup waits for the order service before it answers
    /// from what the checkout recorded.
    #[arg(
        long = "order-service-timeout-ms",
        env = "ORDER_SERVICE_TIMEOUT_MS",
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(50..=60_000)
    )]
    pub order_service_timeout_ms: u64,
    /// Base URL of the order service as browsers reach it: the back office calls it to
    /// list, cancel and fulfil orders (empty: `--order-service-url`). The order service
    /// must allow this service's origin (ORDER_SERVICE_CORS_ALLOWED_ORIGINS).
    #[arg(
        long = "order-service-public-url",
        env = "ORDER_SERVICE_PUBLIC_URL",
        default_value = ""
    )]
    pub order_service_public_url: String,
}

/// What the service consumes (`orders.released`, to give stock back), and how. The
/// names are the order service's for the same knobs.
#[derive(clap::Args, Clone, Debug)]
pub struct ConsumerSettings {
    /// Topic of OrderReleased events (orders that ended FAILED or CANCELLED).
    #[arg(
        long = "orders-released-topic",
        env = "KAFKA_TOPICS_ORDERS_RELEASED",
        default_value = events::ORDERS_RELEASED_TOPIC
    )]
    pub orders_released_topic: String,
    /// Consumer group of the `orders.released` consumer.
    #[arg(
        long = "consumer-group",
        env = "KAFKA_CONSUMER_GROUP_ID",
        default_value = events::CUSTOMER_SERVICE_GROUP
    )]
    pub group_id: String,
    /// Consumer session timeout; a dead consumer's partitions move after this long.
    #[arg(
        long = "kafka-session-timeout-ms",
        env = "KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1000..=300_000)
    )]
    pub session_timeout_ms: u64,
    /// Longest time the broker may hold a fetch with no new records. A stock return may
    /// wait this long; the development broker answers a fetch only when this wait ends
    /// and spends CPU on every round of it, so a short wait costs the machine.
    #[arg(
        long = "kafka-fetch-wait-ms",
        env = "KAFKA_FETCH_WAIT_MS",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..=5_000)
    )]
    pub fetch_wait_ms: u64,
    /// Attempts for a record that fails with a retryable error before it is
    /// dead-lettered.
    #[arg(
        long = "consumer-max-attempts",
        env = "KAFKA_CONSUMER_MAX_ATTEMPTS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub record_max_attempts: u32,
    /// Seconds a record waits out transient database trouble (an outage, a failover,
    /// no free connection, a deadlock) before its attempts above, and then the DLQ.
    #[arg(
        long = "consumer-transient-budget-secs",
        env = "KAFKA_CONSUMER_TRANSIENT_BUDGET_SECS",
        default_value_t = 240,
        value_parser = clap::value_parser!(u64).range(0..=3600)
    )]
    pub transient_budget_secs: u64,
    /// Run the consumer (off: an API-only replica).
    #[arg(
        long = "consumers-enabled",
        env = "CONSUMERS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub consumers_enabled: bool,
}

/// Where the catalogue and cart cache lives. Redis is a cache only: the service works
/// without it.
#[derive(clap::Args, Clone, Debug)]
pub struct RedisSettings {
    /// Redis host.
    #[arg(long = "redis-host", env = "REDIS_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Redis port.
    #[arg(long = "redis-port", env = "REDIS_PORT", default_value_t = 6379)]
    pub port: u16,
    /// Redis password, if the server requires one.
    #[arg(long = "redis-password", env = "REDIS_PASSWORD")]
    pub password: Option<Secret>,
    /// Talk to Redis over TLS, verifying its certificate against Mozilla's roots, or
    /// only against REDIS_CA_FILE when that is set.
    #[arg(long = "redis-tls", env = "REDIS_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls: bool,
    /// PEM file of the certificate authority that signed the Redis server's
    /// certificate (a private CA); needs REDIS_TLS=true.
    #[arg(long = "redis-ca-file", env = "REDIS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Prefix of every key this service writes (tests give each instance its own).
    #[arg(
        long = "redis-key-prefix",
        env = "REDIS_KEY_PREFIX",
        default_value = ""
    )]
    pub key_prefix: String,
    /// Seconds a cached catalogue entry lives; writes also invalidate it at once.
    #[arg(
        long = "catalog-cache-ttl-secs",
        env = "CATALOG_CACHE_TTL_SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub catalog_ttl_secs: u64,
    /// Seconds a catalogue answer may be served from this process's memory (the near
    /// cache in front of Redis; writes on any replica drop it at once through Redis
    /// pub/sub); 0 turns the near cache off.
    #[arg(
        long = "near-cache-ttl-secs",
        env = "NEAR_CACHE_TTL_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=86_400)
    )]
    pub near_cache_ttl_secs: u64,
}

impl Settings {
    /// Every default, in the `test` environment (a run must name its environment).
    pub fn defaults() -> Result<Self, platform::config::ConfigError> {
        platform::config::parse_from(
            "CUSTOMER_SERVICE",
            ["customer-facing-service", "--environment=test"],
            |_| None,
        )
    }

    /// The HTTP port: the setting, or 8080.
    pub fn port(&self) -> u16 {
        self.common.server_port.unwrap_or(crate::DEFAULT_PORT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_local_run_work_with_no_configuration() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.port(), 8080);
        assert_eq!(s.orders_created_topic, "orders.created");
        assert_eq!((s.redis.host.as_str(), s.redis.port), ("127.0.0.1", 6379));
        assert!(s.redis.password.is_none());
        assert!(s.database.database_url.is_none());
        assert_eq!(s.consumer.orders_released_topic, "orders.released");
        assert_eq!(s.consumer.group_id, "customer-service-group");
        assert!(s.consumer.consumers_enabled);
    }

    #[test]
    fn consumer_settings_take_the_order_services_names_with_this_services_prefix() {
        let env = |name: &str| match name {
            "ENVIRONMENT" => Some("test".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_TOPICS_ORDERS_RELEASED" => Some("released.v2".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_CONSUMER_GROUP_ID" => Some("g".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_SESSION_TIMEOUT_MS" => Some("6000".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_FETCH_WAIT_MS" => Some("10".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_CONSUMER_MAX_ATTEMPTS" => Some("3".to_owned()),
            "CUSTOMER_SERVICE_CONSUMERS_ENABLED" => Some("false".to_owned()),
            _ => None,
        };
        let s: Settings =
            platform::config::parse_from("CUSTOMER_SERVICE", ["customer-facing-service"], env)
                .unwrap();
        let c = &s.consumer;
        assert_eq!(c.orders_released_topic, "released.v2");
        assert_eq!(c.group_id, "g");
        assert_eq!(
            (c.session_timeout_ms, c.fetch_wait_ms, c.record_max_attempts),
            (6000, 10, 3)
        );
        assert!(!c.consumers_enabled);
    }

    #[test]
    fn redis_and_topic_settings_take_the_originals_variable_names() {
        let env = |name: &str| match name {
            "ENVIRONMENT" => Some("test".to_owned()),
            "REDIS_HOST" => Some("cache".to_owned()),
            "REDIS_PORT" => Some("6380".to_owned()),
            "REDIS_PASSWORD" => Some("pw".to_owned()),
            "CUSTOMER_SERVICE_KAFKA_TOPICS_ORDERS_CREATED" => Some("orders.v2".to_owned()),
            _ => None,
        };
        let s: Settings =
            platform::config::parse_from("CUSTOMER_SERVICE", ["customer-facing-service"], env)
                .unwrap();
        assert_eq!((s.redis.host.as_str(), s.redis.port), ("cache", 6380));
        assert_eq!(
            s.redis.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("pw")
        );
        assert_eq!(s.orders_created_topic, "orders.v2");
    }
}
