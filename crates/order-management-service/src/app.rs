//! [`Application`]: wires the pool, producer, consumers, payment processor, retry and
//! refund workers, outbox relay and HTTP API of one instance, and runs them until
//! stopped.

use crate::consumer::order_created::OrderCreatedHandler;
use crate::consumer::payment_completed::PaymentCompletedHandler;
use crate::metrics::OrderMetrics;
use crate::payment::breaker::{BreakerConfig, CircuitBreaker, State as BreakerState};
use crate::payment::client::GatewayClient;
use crate::payment::refunds::RefundWorker;
use crate::payment::{refunds, worker, PaymentProcessor, ProcessorSettings};
use crate::routes;
use crate::settings::Settings;
use crate::state::AppState;
use anyhow::Context as _;
use platform::actuator::{Actuator, ComponentHealth, FnIndicator, HealthIndicator};
use platform::app::{Server, Tasks};
use platform::auth::JwtKeys;
use platform::db::Db;
use platform::http::HttpMetrics;
use platform::kafka::{
    self, Brokers, ConsumerMetrics, ConsumerSettings, Handler, Producer, TopicSpec,
};
use platform::metrics::Metrics;
use platform::outbox::{OutboxTable, PgOutboxStore, Relay, RelaySettings};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The database used when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/order_db";
/// The outbox table of this service.
pub const OUTBOX: OutboxTable = OutboxTable::PaymentCompleted;
/// Name of the outbox in the `outbox` metric label.
pub const OUTBOX_NAME: &str = OUTBOX.name();
/// Name of the payment circuit breaker, as the original's resilience4j instance.
pub const BREAKER_NAME: &str = "paymentService";

/// A built instance, listening but not yet serving.
pub struct Application {
    server: Server,
    router: axum::Router,
    tasks: Tasks,
    producer: Producer,
    payments: PaymentProcessor,
}

impl Application {
    /// Builds the instance: migrates `order_db`, starts the background tasks and binds
    /// the port (0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let environment = &settings.common.environment;
        let metrics =
            Metrics::new(crate::SERVICE_NAME, environment.as_str()).context("metrics registry")?;
        let jwt = JwtKeys::from_settings(&settings.jwt, environment.is_local_development())?;
        // Before the database: a settings mistake stops start-up at once.
        let brokers = settings.kafka.brokers().map_err(anyhow::Error::msg)?;
        settings
            .kafka
            .check_secrets(environment)
            .map_err(anyhow::Error::msg)?;
        let db = open_database(&settings, &metrics).await?;
        let producer =
            Producer::new(&brokers, Duration::from_secs(10)).context("kafka producer")?;
        if settings.kafka.create_topics {
            create_topics(&settings, &brokers, &shutdown);
        }
        let payments = Payments::build(&settings, &db, &producer, &metrics)?;
        let mut tasks = Tasks::new(shutdown.clone());
        spawn_workers(&mut tasks, &settings, &db, &payments);
        if settings.consumer.consumers_enabled {
            spawn_consumers(
                &mut tasks, &settings, &brokers, &db, &payments, &producer, &metrics,
            )?;
        }
        let router = router(&settings, db, jwt, &payments, &producer, metrics, &shutdown)?;
        let server = Server::bind(&settings.common, crate::DEFAULT_PORT, shutdown).await?;
        tracing::info!(port = server.port(), gateway = %settings.payment.gateway_url, "order management service listening");
        Ok(Self {
            server,
            router,
            tasks,
            producer,
            payments: payments.processor,
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The token that stops the instance when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.server.shutdown_token()
    }

    /// Serves until the shutdown token is cancelled, then stops the background tasks,
    /// lets payments in flight finish and flushes the producer.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.serve(self.router).await;
        self.tasks.stop(Duration::from_secs(10)).await;
        self.payments.drain(Duration::from_secs(5)).await;
        self.producer.flush(Duration::from_secs(5));
        tracing::info!("order management service stopped");
        served
    }
}

/// Opens the `order_db` pool, with its metrics, and brings its schema up to date
/// (waiting up to 30 s for PostgreSQL).
async fn open_database(settings: &Settings, metrics: &Metrics) -> anyhow::Result<Db> {
    let default_db = sqlx::postgres::PgConnectOptions::from_str(DEFAULT_DATABASE_URL)?;
    let db = Db::new(platform::db::pool(&settings.database, default_db));
    db.register_metrics(metrics, "order_db")
        .context("pool metrics")?;
    platform::db::migrate(db.pool(), &crate::MIGRATOR, Duration::from_secs(30)).await?;
    Ok(db)
}

/// Creates the service's topics and their dead-letter topics in the background, so a
/// broker that is not up yet does not hold back start-up.
fn create_topics(settings: &Settings, brokers: &Brokers, shutdown: &CancellationToken) {
    let topics = &settings.consumer;
    let specs = settings.kafka.replicated(
        [
            TopicSpec::with_dlq(&topics.orders_created_topic),
            TopicSpec::with_dlq(&topics.payments_completed_topic),
            TopicSpec::with_dlq(&topics.orders_released_topic),
        ]
        .concat(),
    );
    kafka::ensure_topics_in_background(brokers.clone(), specs, shutdown.clone());
}

/// What paying for orders takes: the gateway client behind its breaker, the outbox
/// relay that publishes the outcomes, and the processor that uses both.
struct Payments {
    breaker: CircuitBreaker,
    client: GatewayClient,
    relay: Relay,
    metrics: OrderMetrics,
    settings: ProcessorSettings,
    processor: PaymentProcessor,
}

impl Payments {
    fn build(
        settings: &Settings,
        db: &Db,
        producer: &Producer,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let order_metrics = OrderMetrics::new(metrics).context("order metrics")?;
        let pay = &settings.payment;
        let topics = &settings.consumer;
        let breaker = CircuitBreaker::new(
            BREAKER_NAME,
            BreakerConfig::payment_service(pay.breaker_open()),
            metrics,
        )
        .context("breaker metrics")?;
        settings
            .common
            .environment
            .check_secret("ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN", &pay.gateway_token)
            .map_err(anyhow::Error::msg)?;
        let client = GatewayClient::new(
            &pay.gateway_url,
            &pay.gateway_token,
            pay.gateway_ca_file.as_deref(),
            pay.timeout(),
            pay.max_attempts,
            pay.retry_backoff(),
            breaker.clone(),
        )?;
        let relay = Relay::new(
            Arc::new(PgOutboxStore::new(db.pool().clone(), OUTBOX)),
            producer.clone(),
            RelaySettings {
                max_age: Duration::from_secs(topics.outbox_max_age_secs),
                ..RelaySettings::new(OUTBOX_NAME)
            },
            metrics,
        )
        .context("outbox metrics")?;
        let processor_settings = ProcessorSettings {
            payments_completed_topic: topics.payments_completed_topic.clone(),
            orders_released_topic: topics.orders_released_topic.clone(),
            payment_deadline: pay.deadline(),
            claim_lease: pay.claim_lease(),
            retry_base: pay.retry_interval(),
            retry_max: pay.retry_max_delay(),
            concurrency: usize::try_from(pay.concurrency).unwrap_or(32),
        };
        let processor = PaymentProcessor::new(
            db.clone(),
            client.clone(),
            relay.clone(),
            order_metrics.clone(),
            processor_settings.clone(),
        );
        Ok(Self {
            breaker,
            client,
            relay,
            metrics: order_metrics,
            settings: processor_settings,
            processor,
        })
    }
}

/// The outbox relay, the payment retry and refund workers, and the processed-events
/// cleanup.
fn spawn_workers(tasks: &mut Tasks, settings: &Settings, db: &Db, payments: &Payments) {
    let shutdown = tasks.shutdown().clone();
    let retry_interval = settings.payment.retry_interval();
    tasks.spawn(payments.relay.clone().run(shutdown.clone()));
    tasks.spawn(worker::run(
        payments.processor.clone(),
        db.clone(),
        retry_interval,
        shutdown.clone(),
    ));
    tasks.spawn(refunds::run(
        RefundWorker {
            db: db.clone(),
            client: payments.client.clone(),
            metrics: payments.metrics.clone(),
            settings: payments.settings.clone(),
        },
        retry_interval,
        shutdown.clone(),
    ));
    let retention_days = settings.consumer.processed_events_retention_days;
    tasks.spawn(crate::cleanup::run(
        db.clone(),
        Duration::from_secs(retention_days * 24 * 3600),
        shutdown,
    ));
}

/// The `orders.created` and `payments.completed` consumers of the group.
fn spawn_consumers(
    tasks: &mut Tasks,
    settings: &Settings,
    brokers: &Brokers,
    db: &Db,
    payments: &Payments,
    producer: &Producer,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let topics = &settings.consumer;
    let shutdown = tasks.shutdown().clone();
    let consumer_metrics = ConsumerMetrics::new(metrics).context("consumer metrics")?;
    let consumer = |topic: &str, fetch_wait_ms: u64| {
        let mut c = ConsumerSettings::new(brokers, &topics.group_id, &[topic]);
        c.session_timeout = Duration::from_millis(topics.session_timeout_ms);
        c.max_attempts = topics.record_max_attempts;
        c.transient_budget = Duration::from_secs(topics.transient_budget_secs);
        c.fetch_wait = Duration::from_millis(fetch_wait_ms);
        c.max_in_flight = usize::from(topics.max_in_flight);
        c
    };
    let orders: Arc<dyn Handler> = Arc::new(OrderCreatedHandler {
        db: db.clone(),
        payments: payments.processor.clone(),
        metrics: payments.metrics.clone(),
        hand_off_grace: settings.payment.claim_lease().max(Duration::from_secs(5)),
    });
    let completions: Arc<dyn Handler> = Arc::new(PaymentCompletedHandler { db: db.clone() });
    for (consumer_settings, handler) in [
        (
            consumer(&topics.orders_created_topic, topics.fetch_wait_ms),
            orders,
        ),
        (
            consumer(
                &topics.payments_completed_topic,
                topics.payments_completed_fetch_wait_ms,
            ),
            completions,
        ),
    ] {
        tasks.spawn(kafka::consume_until_shutdown(
            consumer_settings,
            handler,
            producer.clone(),
            consumer_metrics.clone(),
            shutdown.clone(),
        ));
    }
    Ok(())
}

/// The API, its OpenAPI document and the actuator, in the platform's frame, behind CORS.
fn router(
    settings: &Settings,
    db: Db,
    jwt: JwtKeys,
    payments: &Payments,
    producer: &Producer,
    metrics: Metrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<axum::Router> {
    let indicators: Vec<Box<dyn HealthIndicator>> = vec![
        Box::new(db.health_indicator()),
        Box::new(producer.health_indicator(true)),
        Box::new(payments.client.health_indicator()),
        Box::new(breaker_indicator(payments.breaker.clone())),
    ];
    let http_metrics = HttpMetrics::new(&metrics).context("http metrics")?;
    let actuator = Actuator::new(metrics, shutdown.clone(), Some(jwt.clone()), indicators);
    let api = routes::router(AppState {
        db,
        jwt,
        relay: payments.relay.clone(),
        orders_released_topic: settings.consumer.orders_released_topic.clone(),
        checkouts: platform::forward::Forwarder::new(
            &settings.customer_service_url,
            Duration::from_millis(settings.customer_service_timeout_ms),
        )?,
        lookups: Arc::new(settings.lookup_limits.limiter()),
        guesses: Arc::new(platform::limit::RateLimiter::new(
            crate::state::GUESS_BURST,
            crate::state::GUESSES_PER_MINUTE,
        )),
        clients: platform::client::ClientAddresses::new(&settings.client_addresses),
    })
    .merge(crate::openapi::router());
    let origins = platform::cors::AllowedOrigins::new(&settings.cors_allowed_origins)?;
    Ok(platform::app::router(api, &actuator, http_metrics).layer(
        axum::middleware::from_fn_with_state(origins, platform::cors::cors),
    ))
}

/// The `circuitBreakers` health component: DOWN while the breaker is open (it does not
/// make the instance unready: orders wait in PROCESSING and resume by themselves).
fn breaker_indicator(breaker: CircuitBreaker) -> impl HealthIndicator {
    FnIndicator::new("circuitBreakers", false, move || {
        let state = breaker.state();
        let name = breaker.name().to_owned();
        Box::pin(async move {
            let health = if state == BreakerState::Open {
                ComponentHealth::down_because("circuit breaker open")
            } else {
                ComponentHealth::up()
            };
            health.with_detail(&name, serde_json::json!({"state": state.as_str()}))
        })
    })
}
