//! Bounds on the work callers can cause: a keyed rate limiter (logins per user name and
//! client address, order lookups per client address) and the API's load shedding (a
//! cap on requests in flight and a time-out per request). A flood meets a 429 or a 503 with `Retry-After`, instead of
//! memory running out or every caller waiting.

use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A token bucket per key: `burst` requests at once, refilled at `per_minute`.
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why an anonymous order lookup was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupRefused {
    /// The client's lookups are spent.
    TooManyLookups(Duration),
    /// The client's guesses (customer emails claimed, counted like passwords) are spent.
    TooManyGuesses(Duration),
}

impl LookupRefused {
    /// The problem's detail for the caller.
    pub fn detail(self) -> &'static str {
        match self {
            Self::TooManyLookups(_) => "Too many order lookups. Please wait before trying again.",
            Self::TooManyGuesses(_) => "Too many failed attempts. Please wait before trying again.",
        }
    }

    /// How long until the client may try again (`Retry-After`).
    pub fn retry_after(self) -> Duration {
        match self {
            Self::TooManyLookups(d) | Self::TooManyGuesses(d) => d,
        }
    }
}

/// Admits an order lookup by `client`, the one rule both services' lookups follow: a
/// manager is not limited; anyone else spends one of `lookups`, and a claimed customer
/// email (which unmasks the order, so it is a guess) also spends one of `guesses`. The
/// caller gives the guess back when the claim was right.
pub fn admit_lookup(
    lookups: &RateLimiter,
    guesses: &RateLimiter,
    client: &str,
    manager: bool,
    claims_email: bool,
) -> Result<(), LookupRefused> {
    if manager {
        return Ok(());
    }
    lookups.take(client).map_err(|retry_after| {
        tracing::warn!(client = %client, "order lookup refused: too many lookups");
        LookupRefused::TooManyLookups(retry_after)
    })?;
    if claims_email {
        guesses.take(client).map_err(|retry_after| {
            tracing::warn!(client = %client, "order lookup refused: too many wrong emails");
            LookupRefused::TooManyGuesses(retry_after)
        })?;
    }
    Ok(())
}

/// Keys kept before full buckets are forgotten: bounds the limiter's own memory when
/// callers invent a new key per request.
const MAX_KEYS: usize = 50_000;

impl RateLimiter {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one of `key`'s tokens, or says how long until one is there. Checking and
    /// taking are one step under one lock, so a burst of parallel requests gets no more
    /// than the tokens there are: take before doing the work the limit guards (a
    /// password check), not after.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// Returns a token taken for `key` (a login that succeeded: the limit counts
    /// guesses, not the people who know their password).
    pub fn give_back(&self, key: &str) {
        self.give_back_at(key, Instant::now());
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (burst, per_sec) = (self.burst, self.per_sec);
            buckets.retain(|_, b| refilled(*b, now, burst, per_sec) < burst);
            if buckets.len() >= MAX_KEYS {
                // Every key is mid-flood: start over rather than grow without bound.
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refilled(*bucket, now, self.burst, self.per_sec);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
        }
    }

    fn give_back_at(&self, key: &str, now: Instant) {
        let mut buckets = self.lock();
        if let Some(bucket) = buckets.get_mut(key) {
            let tokens = refilled(*bucket, now, self.burst, self.per_sec);
            *bucket = Bucket {
                tokens: (tokens + 1.0).min(self.burst),
                at: now,
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        // A panic while holding the lock cannot leave a bucket half-written.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn refilled(bucket: Bucket, now: Instant, burst: f64, per_sec: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * per_sec).min(burst)
}

/// How many anonymous order lookups one client may make. Order numbers count up per
/// day, so without a bound anyone could read every order's status, items and totals
/// by walking them.
#[derive(clap::Args, Clone, Debug)]
pub struct LookupLimitSettings {
    /// Anonymous order lookups one client address may make at once; 429 with
    /// Retry-After beyond. A manager's token is not limited.
    #[arg(long = "order-lookup-burst", env = "ORDER_LOOKUP_BURST", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub burst: u32,
    /// Anonymous order lookups per minute a client address gets back after its burst.
    #[arg(long = "order-lookups-per-minute", env = "ORDER_LOOKUPS_PER_MINUTE",
          default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub per_minute: u32,
}

impl LookupLimitSettings {
    /// The limiter these settings describe, keyed by client address.
    pub fn limiter(&self) -> RateLimiter {
        RateLimiter::new(self.burst, self.per_minute)
    }
}

/// `problem` with a `Retry-After` of `after` (whole seconds, at least 1).
pub fn with_retry_after(problem: Problem, after: Duration) -> Response {
    let mut response = problem.into_response();
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// A 429 problem telling the caller when to come back.
pub fn too_many_requests(detail: impl Into<String>, after: Duration) -> Response {
    with_retry_after(
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too Many Requests",
            detail,
        ),
        after,
    )
}

/// How much an instance takes on at once.
#[derive(Clone)]
pub struct LoadShedding {
    in_flight: Arc<Semaphore>,
    limit: usize,
    timeout: Duration,
}

impl LoadShedding {
    /// API requests in flight at once, and the longest one may take.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            limit: max_in_flight.max(1),
            timeout,
        }
    }
}

impl Default for LoadShedding {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_IN_FLIGHT, Self::DEFAULT_TIMEOUT)
    }
}

/// Middleware: a request over the in-flight limit is refused at once with 503, and one
/// that runs past the time-out is abandoned with 503, both with `Retry-After: 1`.
pub async fn shed(State(limits): State<LoadShedding>, request: Request, next: Next) -> Response {
    let Ok(_slot) = limits.in_flight.clone().try_acquire_owned() else {
        tracing::warn!(
            limit = limits.limit,
            "request shed: too many requests in flight"
        );
        return with_retry_after(
            Problem::service_unavailable("The service is busy. Please retry shortly."),
            Duration::from_secs(1),
        );
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeoutMs = limits.timeout.as_millis() as u64,
                "request abandoned: it ran past the time-out"
            );
            with_retry_after(
                Problem::service_unavailable(format!(
                    "The request did not complete within {} s. Please retry.",
                    limits.timeout.as_secs()
                )),
                Duration::from_secs(1),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_may_spend_its_burst_then_waits_until_it_refills() {
        let limiter = RateLimiter::new(3, 60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at("ada", t0).is_ok());
        }
        let wait = limiter.take_at("ada", t0).expect_err("burst spent");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(limiter.take_at("bob", t0).is_ok(), "keys are independent");
        assert!(limiter
            .take_at("ada", t0 + Duration::from_millis(1100))
            .is_ok());
    }

    #[test]
    fn a_refused_take_costs_nothing_more_and_a_token_given_back_may_be_taken_again() {
        let limiter = RateLimiter::new(1, 60);
        let t0 = Instant::now();
        assert!(limiter.take_at("ada", t0).is_ok());
        for _ in 0..5 {
            assert!(limiter.take_at("ada", t0).is_err());
        }
        assert!(
            limiter
                .take_at("ada", t0 + Duration::from_millis(1001))
                .is_ok(),
            "refusals do not push the refill back"
        );
        limiter.give_back_at("ada", t0 + Duration::from_millis(1001));
        assert!(limiter
            .take_at("ada", t0 + Duration::from_millis(1001))
            .is_ok());
        limiter.give_back_at("ada", t0 + Duration::from_secs(100));
        limiter.give_back_at("ada", t0 + Duration::from_secs(100));
        assert!(limiter
            .take_at("ada", t0 + Duration::from_secs(100))
            .is_ok());
        assert!(
            limiter
                .take_at("ada", t0 + Duration::from_secs(100))
                .is_err(),
            "giving back never fills past the burst"
        );
    }

    #[test]
    fn the_limiter_forgets_idle_keys_instead_of_growing_without_bound() {
        let limiter = RateLimiter::new(1, 600);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            let _ = limiter.take_at(&i.to_string(), t0);
        }
        let _ = limiter.take_at("new", t0 + Duration::from_secs(10));
        let size = limiter.lock().len();
        assert!(size < 10, "idle full buckets were dropped, {size} left");
    }
}
