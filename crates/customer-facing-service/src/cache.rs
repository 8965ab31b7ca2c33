//! The Redis cache in front of the catalogue and the carts.
//!
//! Redis is a cache only: every operation has a short timeout, and a failure (Redis
//! down, slow, or never reachable since start-up) reads as a miss or a skipped write,
//! so every route keeps working from PostgreSQL. The connection is made lazily and
//! retried at most once a second. `cache_requests_total{cache,result}` counts hits and
//! misses of each cache. The [`NearCache`] in front of it lives here too, with the
//! Redis channel that keeps it coherent across replicas.

use platform::actuator::{ComponentHealth, FnIndicator, HealthIndicator};
use prometheus::IntCounterVec;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::near_cache::NearCache;
use crate::settings::RedisSettings;
use tokio_util::sync::CancellationToken;

/// How long one Redis call may take before it counts as a failure.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// Channel (after the key prefix) on which catalogue writes announce what changed.
const INVALIDATION_CHANNEL: &str = "catalog:invalidations";
/// Least time between two attempts to (re)connect.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// Sets KEYS[1] to ARGV[1] with ARGV[3] seconds to live unless the current value's
/// `version` is greater than ARGV[2].
const SET_IF_NEWER: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['version'])
     and tonumber(decoded['version']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"#;

/// The cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    prefix: String,
    ttl: Duration,
    manager: RwLock<Option<ConnectionManager>>,
    /// Held while connecting; holds the time of the last attempt.
    connecting: Mutex<Option<Instant>>,
    requests: IntCounterVec,
    near: NearCache,
}

impl Cache {
    /// A cache for `settings`; connects on first use.
    pub fn new(
        settings: &RedisSettings,
        metrics: &platform::metrics::Metrics,
    ) -> anyhow::Result<Self> {
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(settings.host.clone(), settings.port),
            redis: RedisConnectionInfo {
                password: settings.password.as_ref().map(|p| p.expose().to_owned()),
                ..RedisConnectionInfo::default()
            },
        };
        let client = match redis::Client::open(info) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "redis settings unusable; running without a cache");
                None
            }
        };
        let requests = metrics.counter_vec(
            "cache_requests_total",
            "Cache lookups by cache and result (hit or miss).",
            &["cache", "result"],
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                prefix: settings.key_prefix.clone(),
                ttl: Duration::from_secs(settings.catalog_ttl_secs),
                manager: RwLock::new(None),
                connecting: Mutex::new(None),
                requests,
                near: NearCache::new(Duration::from_secs(settings.near_cache_ttl_secs)),
            }),
        })
    }

    /// Lifetime of catalogue entries.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The near cache in front of this one.
    pub fn near(&self) -> &NearCache {
        &self.inner.near
    }

    /// Keeps the near cache's invalidation subscription up until `shutdown`; without
    /// Redis settings the near cache stays off.
    pub async fn run_near_cache(self, shutdown: CancellationToken) {
        if let Some(client) = self.inner.client.clone() {
            let channel = self.key(INVALIDATION_CHANNEL);
            self.inner
                .near
                .clone()
                .run_subscriber(client, channel, shutdown)
                .await;
        }
    }

    /// Announces `message` to every replica's near cache.
    pub async fn publish_invalidation(&self, message: String) {
        let channel = self.key(INVALIDATION_CHANNEL);
        self.call(|mut c| async move { c.publish::<_, _, ()>(channel, message).await })
            .await;
    }

    /// `key` with this instance's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.inner.client.as_ref()?;
        if let Some(manager) = self.current_manager() {
            return Some(manager);
        }
        // Someone else is connecting: do not queue behind them, treat as unavailable.
        let mut last_attempt = self.inner.connecting.try_lock().ok()?;
        if let Some(manager) = self.current_manager() {
            return Some(manager);
        }
        if last_attempt.is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL) {
            return None;
        }
        *last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        match tokio::time::timeout(
            CALL_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                tracing::info!("connected to redis");
                if let Ok(mut slot) = self.inner.manager.write() {
                    *slot = Some(manager.clone());
                }
                Some(manager)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis unavailable; serving from PostgreSQL");
                None
            }
            Err(_) => {
                tracing::warn!("redis connection timed out; serving from PostgreSQL");
                None
            }
        }
    }

    fn current_manager(&self) -> Option<ConnectionManager> {
        self.inner.manager.read().ok().and_then(|m| m.clone())
    }

    /// Runs one command with the call timeout; `None` on any failure.
    async fn call<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let manager = self.connection().await?;
        match tokio::time::timeout(CALL_TIMEOUT, op(manager)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis call failed");
                None
            }
            Err(_) => {
                tracing::debug!("redis call timed out");
                None
            }
        }
    }

    /// Counts one lookup of `cache`.
    pub fn count(&self, cache: &str, hit: bool) {
        self.inner
            .requests
            .with_label_values(&[cache, if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// The value at `key` (unprefixed) if cached and readable; counted under `cache`.
    pub async fn get<T: DeserializeOwned>(&self, cache: &str, key: &str) -> Option<T> {
        let key = self.key(key);
        let raw: Option<String> = self
            .call(|mut c| async move { c.get::<_, Option<String>>(key).await })
            .await
            .flatten();
        let value = raw.and_then(|raw| serde_json::from_str(&raw).ok());
        self.count(cache, value.is_some());
        value
    }

    /// Values at several keys, `None` where missing; each counted under `cache`.
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        cache: &str,
        keys: &[String],
    ) -> Vec<Option<T>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let raws: Option<Vec<Option<String>>> = self
            .call(|mut c| async move {
                redis::cmd("MGET")
                    .arg(&full)
                    .query_async::<Vec<Option<String>>>(&mut c)
                    .await
            })
            .await;
        let values: Vec<Option<T>> = match raws {
            Some(raws) if raws.len() == keys.len() => raws
                .into_iter()
                .map(|raw| raw.and_then(|raw| serde_json::from_str(&raw).ok()))
                .collect(),
            _ => keys.iter().map(|_| None).collect(),
        };
        for value in &values {
            self.count(cache, value.is_some());
        }
        values
    }

    /// Stores `value` at `key` for `ttl`.
    pub async fn set<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let key = self.key(key);
        let secs = ttl.as_secs().max(1);
        self.call(|mut c| async move { c.set_ex::<_, _, ()>(key, raw, secs).await })
            .await;
    }

    /// Stores `value` at `key` for `ttl` unless the entry there carries a newer
    /// `version`: concurrent writers that finish out of order never leave an older
    /// state behind. `value` must serialize to an object with a numeric `version`.
    pub async fn set_if_newer<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        version: i64,
        ttl: Duration,
    ) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let key = self.key(key);
        let secs = ttl.as_secs().max(1);
        self.call(|mut c| async move {
            redis::cmd("EVAL")
                .arg(SET_IF_NEWER)
                .arg(1)
                .arg(key)
                .arg(raw)
                .arg(version)
                .arg(secs)
                .query_async::<i64>(&mut c)
                .await
        })
        .await;
    }

    /// The counter at `key`, 0 when unset; `None` when Redis is unavailable.
    pub async fn counter(&self, key: &str) -> Option<i64> {
        let key = self.key(key);
        self.call(|mut c| async move { c.get::<_, Option<i64>>(key).await })
            .await
            .map(Option::unwrap_or_default)
    }

    /// Increments the counter at `key`.
    pub async fn increment(&self, key: &str) {
        let key = self.key(key);
        self.call(|mut c| async move { c.incr::<_, _, ()>(key, 1).await })
            .await;
    }

    /// The `redis` health component; never required for readiness.
    pub fn health_indicator(&self) -> impl HealthIndicator {
        let cache = self.clone();
        FnIndicator::new("redis", false, move || {
            let cache = cache.clone();
            Box::pin(async move {
                let pong =
                    cache
                        .call(|mut c| async move {
                            redis::cmd("PING").query_async::<String>(&mut c).await
                        })
                        .await;
                match pong {
                    Some(_) => ComponentHealth::up(),
                    None => ComponentHealth::down_because("unreachable"),
                }
            })
        })
    }
}
