//! The Redis cache in front of the catalogue and the carts.
//!
//! Redis is a cache only: every operation has a short timeout, and a failure (Redis
//! down, slow, or never reachable since start-up) reads as a miss or a skipped write,
//! so every route keeps working from PostgreSQL. The connection is made lazily and
//! retried at most once a second. `cache_requests_total{cache,result}` counts hits and
//! misses of each cache. The [`NearCache`] in front of it lives here too, with the
//! Redis channel that keeps it coherent across replicas.
//!
//! A hung Redis costs a request at most one timeout: several keys go in one round trip
//! (an MGET, or one pipeline for writes and invalidations), and after a call times out
//! the optional calls (reads, and fills that only copy PostgreSQL's current state into
//! the cache) are skipped for a second (`STALL_BACKOFF`) or until a call succeeds, so the rest
//! of the request and the requests right after it go straight to PostgreSQL. Writes
//! that keep the cache correct (a changed cart, tombstones, the listing generation,
//! the invalidation message) are always attempted, since skipping one could leave a
//! stale entry behind.

use platform::actuator::{ComponentHealth, FnIndicator, HealthIndicator};
use prometheus::IntCounterVec;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, TlsCertificates};
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
/// How long optional calls are skipped after a call timed out: long enough that a
/// request reading the cart and then its products pays one timeout, not two.
const STALL_BACKOFF: Duration = Duration::from_secs(1);

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
    /// Until when optional calls are skipped, after a call timed out.
    stalled_until: std::sync::Mutex<Option<Instant>>,
}

/// The PEM certificates in `path`: at least one, or a start-up error naming the file.
fn read_ca_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("REDIS_CA_FILE {} cannot be read: {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(
            "REDIS_CA_FILE {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(pem)
}

/// Whether a call may be skipped while Redis looks hung.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A read or a fill: skipping it only costs a miss.
    Optional,
    /// A write the cache's correctness depends on.
    Required,
}

impl Cache {
    /// A cache for `settings`; connects on first use.
    pub fn new(
        settings: &RedisSettings,
        metrics: &platform::metrics::Metrics,
    ) -> anyhow::Result<Self> {
        let addr = if settings.tls {
            ConnectionAddr::TcpTls {
                host: settings.host.clone(),
                port: settings.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(settings.host.clone(), settings.port)
        };
        let info = ConnectionInfo {
            addr,
            redis: RedisConnectionInfo {
                password: settings.password.as_ref().map(|p| p.expose().to_owned()),
                ..RedisConnectionInfo::default()
            },
        };
        // A CA the operator named but that cannot be used is a configuration error,
        // not a reason to run without a cache (or to trust other roots instead).
        let ca = match &settings.ca_file {
            None => None,
            Some(_) if !settings.tls => {
                anyhow::bail!(
                    "REDIS_CA_FILE is set but REDIS_TLS is not true: set REDIS_TLS=true to use it"
                )
            }
            Some(path) => Some(read_ca_file(path)?),
        };
        let client = match ca {
            Some(root_cert) => redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            None => redis::Client::open(info),
        };
        let client = match client {
            Ok(client) => Some(client),
            Err(e) if settings.ca_file.is_some() => {
                anyhow::bail!("REDIS_CA_FILE is not a usable PEM certificate: {e}")
            }
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
                stalled_until: std::sync::Mutex::new(None),
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

    // Only an instant is kept under the lock: a panic cannot leave it torn, so a
    // poisoned lock is used as it is.
    fn stalled_until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.inner
            .stalled_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Skips optional calls for the next [`STALL_BACKOFF`].
    fn stall(&self) {
        *self.stalled_until() = Some(Instant::now() + STALL_BACKOFF);
    }

    /// Ends the skipping of optional calls.
    fn recover(&self) {
        *self.stalled_until() = None;
    }

    fn stalled(&self) -> bool {
        self.stalled_until()
            .is_some_and(|until| Instant::now() < until)
    }

    /// Runs one command (or one pipeline) with the call timeout; `None` on any failure,
    /// or at once for an optional call while Redis looks hung.
    async fn call<T, F, Fut>(&self, need: Need, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if need == Need::Optional && self.stalled() {
            return None;
        }
        let manager = self.connection().await?;
        match tokio::time::timeout(CALL_TIMEOUT, op(manager)).await {
            Ok(Ok(value)) => {
                // Redis answered: it is not hung (any more), so stop skipping.
                self.recover();
                Some(value)
            }
            // The connection manager's own response timeout (as long as ours) usually
            // fires first and reads as an error: a stall all the same.
            Ok(Err(e)) if e.is_timeout() => {
                tracing::debug!(error = %e, "redis call timed out");
                self.stall();
                None
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis call failed");
                None
            }
            Err(_) => {
                tracing::debug!("redis call timed out");
                self.stall();
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
            .call(Need::Optional, |mut c| async move {
                c.get::<_, Option<String>>(key).await
            })
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
            .call(Need::Optional, |mut c| async move {
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

    /// Stores `value` at `key` for `ttl` as a fill: skipped while Redis looks hung, so
    /// only for values whose absence costs no more than a miss.
    pub async fn fill<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let key = self.key(key);
        let secs = ttl.as_secs().max(1);
        self.call(Need::Optional, |mut c| async move {
            c.set_ex::<_, _, ()>(key, raw, secs).await
        })
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
        self.write_if_newer(Need::Required, &[Versioned::new(key, value, version)], ttl)
            .await;
    }

    /// [`set_if_newer`](Self::set_if_newer) for several entries in one round trip, as
    /// a fill: skipped while Redis looks hung, so only for PostgreSQL's current state.
    pub async fn fill_many_if_newer(&self, entries: &[Versioned], ttl: Duration) {
        self.write_if_newer(Need::Optional, entries, ttl).await;
    }

    /// [`set_if_newer`](Self::set_if_newer) as a fill of one entry.
    pub async fn fill_if_newer<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        version: i64,
        ttl: Duration,
    ) {
        self.write_if_newer(Need::Optional, &[Versioned::new(key, value, version)], ttl)
            .await;
    }

    async fn write_if_newer(&self, need: Need, entries: &[Versioned], ttl: Duration) {
        let secs = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        for entry in entries {
            if let Some(raw) = &entry.raw {
                pipe.add_command(self.set_if_newer_cmd(&entry.key, raw, entry.version, secs))
                    .ignore();
            }
        }
        if pipe.is_empty() {
            return;
        }
        self.call(
            need,
            |mut c| async move { pipe.query_async::<()>(&mut c).await },
        )
        .await;
    }

    fn set_if_newer_cmd(&self, key: &str, raw: &str, version: i64, secs: u64) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SET_IF_NEWER)
            .arg(1)
            .arg(self.key(key))
            .arg(raw)
            .arg(version)
            .arg(secs);
        cmd
    }

    /// One invalidation in one round trip, as a transaction: replaces each entry unless
    /// newer (tombstones), increments the counter at `counter` (a listing generation),
    /// then announces `message` to every replica's near cache. The message goes last,
    /// so a replica that drops its copy on it finds Redis already cleared.
    pub async fn invalidate(
        &self,
        entries: &[Versioned],
        ttl: Duration,
        counter: &str,
        message: String,
    ) {
        let secs = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for entry in entries {
            if let Some(raw) = &entry.raw {
                pipe.add_command(self.set_if_newer_cmd(&entry.key, raw, entry.version, secs))
                    .ignore();
            }
        }
        pipe.incr(self.key(counter), 1)
            .ignore()
            .publish(self.key(INVALIDATION_CHANNEL), message)
            .ignore();
        self.call(Need::Required, |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await;
    }

    /// The counter at `key`, 0 when unset; `None` when Redis is unavailable.
    pub async fn counter(&self, key: &str) -> Option<i64> {
        let key = self.key(key);
        self.call(Need::Optional, |mut c| async move {
            c.get::<_, Option<i64>>(key).await
        })
        .await
        .map(Option::unwrap_or_default)
    }

    /// The `redis` health component; never required for readiness.
    pub fn health_indicator(&self) -> impl HealthIndicator {
        let cache = self.clone();
        FnIndicator::new("redis", false, move || {
            let cache = cache.clone();
            Box::pin(async move {
                // Required: the health check says how Redis is now, not how it was.
                let pong = cache
                    .call(Need::Required, |mut c| async move {
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

/// One entry of a versioned write: `key` (unprefixed), its JSON and its version.
pub struct Versioned {
    key: String,
    /// `None` when the value did not serialize; such an entry is left out.
    raw: Option<String>,
    version: i64,
}

impl Versioned {
    /// `value` at `key`, replacing only entries whose `version` is not newer; `value`
    /// must serialize to an object with a numeric `version`.
    pub fn new<T: Serialize>(key: &str, value: &T, version: i64) -> Self {
        Self {
            key: key.to_owned(),
            raw: serde_json::to_string(value).ok(),
            version,
        }
    }
}
