//! Builds the service from its settings: pool and migrations, demo users, cache,
//! producer and outbox relay, the `orders.released` consumer, actuator, router and
//! background tasks.

use crate::cache::Cache;
use crate::metrics::AppMetrics;
use crate::outbox::OUTBOX_NAME;
use crate::settings::Settings;
use crate::state::{AppState, StateInner};
use crate::stock_returns::StockReturnHandler;
use anyhow::Context;
use platform::actuator::Actuator;
use platform::app::{Server, Tasks};
use platform::auth::JwtKeys;
use platform::db::Db;
use platform::http::HttpMetrics;
use platform::kafka::{self, ConsumerMetrics, ConsumerSettings, Handler, Producer, TopicSpec};
use platform::metrics::Metrics;
use platform::outbox::{Relay, RelaySettings};
use sqlx::migrate::Migrator;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The migrations of `customer_db`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/customer_db");

/// Default database when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/customer_db";
/// How long start-up waits for PostgreSQL to run the migrations.
const MIGRATION_WAIT: Duration = Duration::from_secs(30);
/// How long background tasks get to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The API routes with their state, the pages built on them and the API document.
///
/// Every route sits behind `reject_invalid_bearer`: a request that carries a bad token
/// is 401 even on a public route, as in the original.
fn api(state: AppState, order_api: &str) -> axum::Router {
    axum::Router::new()
        .merge(crate::storefront::router(order_api))
        .merge(crate::routes::router())
        .merge(crate::openapi::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            platform::auth::reject_invalid_bearer::<AppState>,
        ))
        .with_state(state)
}

/// The built service, listening but not yet serving.
pub struct Application {
    server: Server,
    router: axum::Router,
    tasks: Tasks,
    shutdown: CancellationToken,
    producer: Producer,
}

impl Application {
    /// Connects, migrates, seeds, binds the listener and starts the background tasks.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let environment = settings.common.environment.clone();
        let keys = JwtKeys::from_settings(&settings.jwt, environment.is_local_development())?;
        let metrics = Metrics::new(crate::SERVICE_NAME, environment.as_str())?;
        // Before the database: a settings mistake stops start-up at once.
        let brokers = settings.kafka.brokers().map_err(anyhow::Error::msg)?;
        settings
            .kafka
            .check_secrets(&environment)
            .map_err(anyhow::Error::msg)?;
        if let Some(password) = &settings.redis.password {
            environment
                .check_secret("REDIS_PASSWORD", password)
                .map_err(anyhow::Error::msg)?;
        }
        let cache = Cache::new(&settings.redis, &metrics)?;
        let default_db = sqlx::postgres::PgConnectOptions::from_str(DEFAULT_DATABASE_URL)?;
        let pool = platform::db::pool(&settings.database, default_db);
        platform::db::migrate(&pool, &MIGRATOR, MIGRATION_WAIT).await?;
        let db = Db::new(pool);
        db.register_metrics(&metrics, "customer_db")?;
        if !environment.is_local_development() {
            crate::managers::refuse_demo_passwords(&db).await?;
            tracing::info!("not local development: no demo users");
        } else {
            crate::managers::seed_demo_users(&db)
                .await
                .context("creating the demo users")?;
        }
        let producer = Producer::new(
            &brokers,
            Duration::from_millis(settings.delivery_timeout_ms),
        )?;
        let store = crate::outbox::store(&db);
        let mut relay_settings = RelaySettings::new(OUTBOX_NAME);
        relay_settings.max_age = Duration::from_secs(settings.outbox_max_age_secs);
        let relay = Relay::new(
            Arc::new(store.clone()),
            producer.clone(),
            relay_settings,
            &metrics,
        )?;
        let shutdown = CancellationToken::new();
        if settings.kafka.create_topics {
            let specs = settings.kafka.replicated(
                [
                    TopicSpec::with_dlq(&settings.orders_created_topic),
                    TopicSpec::with_dlq(&settings.consumer.orders_released_topic),
                ]
                .concat(),
            );
            kafka::ensure_topics_in_background(brokers.clone(), specs, shutdown.clone());
        }
        let app_metrics = AppMetrics::new(&metrics)?;
        let actuator = Actuator::new(
            metrics.clone(),
            shutdown.clone(),
            Some(keys.clone()),
            vec![
                Box::new(db.health_indicator()),
                Box::new(cache.health_indicator()),
                Box::new(producer.health_indicator(false)),
                Box::new(store.health_indicator()),
            ],
        );
        let state = AppState::new(StateInner {
            db: db.clone(),
            cache: cache.clone(),
            keys,
            metrics: app_metrics.clone(),
            relay: relay.clone(),
            orders_created_topic: settings.orders_created_topic.clone(),
            logins: crate::managers::LoginGuard::default(),
            orders: crate::orders::OrderLookup::new(
                &settings.order_service_url,
                Duration::from_millis(settings.order_service_timeout_ms),
            )?,
            lookups: settings.lookup_limits.limiter(),
            clients: platform::client::ClientAddresses::new(&settings.client_addresses),
        });
        let router = platform::app::router(
            api(
                state,
                if settings.order_service_public_url.is_empty() {
                    &settings.order_service_url
                } else {
                    &settings.order_service_public_url
                },
            ),
            &actuator,
            HttpMetrics::new(&metrics)?,
        );
        let server = Server::bind(&settings.common, crate::DEFAULT_PORT, shutdown.clone()).await?;
        let mut tasks = Tasks::new(shutdown.clone());
        tasks.spawn(relay.run(shutdown.clone()));
        tasks.spawn(cache.clone().run_near_cache(shutdown.clone()));
        tasks.spawn(crate::jobs::run_cleanup(
            db.clone(),
            Duration::from_secs(settings.cleanup_interval_secs),
            shutdown.clone(),
        ));
        // No health indicator for the consumer: the broker is not required for
        // readiness here (ADR 0004); a record simply waits in the topic while it is down.
        let topics = &settings.consumer;
        if topics.consumers_enabled {
            let mut consumer =
                ConsumerSettings::new(&brokers, &topics.group_id, &[&topics.orders_released_topic]);
            consumer.session_timeout = Duration::from_millis(topics.session_timeout_ms);
            consumer.max_attempts = topics.record_max_attempts;
            consumer.transient_budget = Duration::from_secs(topics.transient_budget_secs);
            consumer.fetch_wait = Duration::from_millis(topics.fetch_wait_ms);
            let handler: Arc<dyn Handler> = Arc::new(StockReturnHandler {
                db,
                cache: cache.clone(),
                metrics: app_metrics,
            });
            tasks.spawn(kafka::consume_until_shutdown(
                consumer,
                handler,
                producer.clone(),
                ConsumerMetrics::new(&metrics)?,
                shutdown.clone(),
            ));
        }
        tracing::info!(port = server.port(), environment = %environment.as_str(), "customer-facing service started");
        Ok(Self {
            server,
            router,
            tasks,
            shutdown,
            producer,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The token that stops the service (and every task of it) when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then stops the tasks and flushes
    /// the producer.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.serve(self.router).await;
        self.shutdown.cancel();
        self.tasks.stop(SHUTDOWN_GRACE).await;
        self.producer.flush(Duration::from_secs(5));
        tracing::info!("customer-facing service stopped");
        served
    }
}
