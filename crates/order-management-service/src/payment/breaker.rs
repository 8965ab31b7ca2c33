//! The `paymentService` circuit breaker, with resilience4j's semantics and defaults:
//! a count-based window of the last 10 calls; once at least 5 are recorded and half or
//! more failed, it opens; after the open duration it lets 3 trial calls through
//! (half-open) and closes again if fewer than half of them failed, or re-opens.
//!
//! Its state is exported as `resilience4j_circuitbreaker_state{name, state}`: 1 for the
//! current state, 0 for the others, so the runbook's alert works unchanged.

use platform::metrics::Metrics;
use prometheus::{IntCounterVec, IntGaugeVec};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
        }
    }
}

/// The breaker's thresholds.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub window_size: usize,
    pub minimum_calls: usize,
    pub failure_rate_threshold: f64,
    pub open_duration: Duration,
    pub half_open_calls: usize,
}

impl BreakerConfig {
    /// resilience4j's `paymentService` configuration of the original, with the open
    /// duration given (30 s there; shorter in tests).
    pub fn payment_service(open_duration: Duration) -> Self {
        Self {
            window_size: 10,
            minimum_calls: 5,
            failure_rate_threshold: 0.5,
            open_duration,
            half_open_calls: 3,
        }
    }
}

struct Inner {
    state: State,
    /// Outcomes of the last calls while closed; `true` is a failure.
    window: VecDeque<bool>,
    opened_at: Instant,
    half_open_issued: usize,
    half_open_results: Vec<bool>,
    /// Bumped on every transition, so a late result of an earlier state is ignored.
    generation: u64,
}

/// A circuit breaker; cheap to clone.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
    state_gauge: IntGaugeVec,
    calls: IntCounterVec,
}

/// Leave to make one call; report how it went with [`Permit::success`] or
/// [`Permit::failure`]. Dropped without a report, it frees its half-open slot.
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    half_open: bool,
    reported: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.record(self.generation, self.half_open, false);
    }
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.record(self.generation, self.half_open, true);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported && self.half_open {
            let mut inner = self.breaker.lock();
            if inner.generation == self.generation && inner.state == State::HalfOpen {
                inner.half_open_issued = inner.half_open_issued.saturating_sub(1);
            }
        }
    }
}

impl CircuitBreaker {
    pub fn new(name: &str, config: BreakerConfig, metrics: &Metrics) -> prometheus::Result<Self> {
        let state_gauge = metrics.gauge_vec(
            "resilience4j_circuitbreaker_state",
            "Circuit breaker state: 1 for the current state, 0 for the others.",
            &["name", "state"],
        )?;
        let calls = metrics.counter_vec(
            "resilience4j_circuitbreaker_calls_total",
            "Calls through the circuit breaker by kind (successful, failed, not_permitted).",
            &["name", "kind"],
        )?;
        let breaker = Self {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                config,
                inner: Mutex::new(Inner {
                    state: State::Closed,
                    window: VecDeque::new(),
                    opened_at: Instant::now(),
                    half_open_issued: 0,
                    half_open_results: Vec::new(),
                    generation: 0,
                }),
                state_gauge,
                calls,
            }),
        };
        breaker.publish(State::Closed);
        Ok(breaker)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a poisoned lock is usable.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, current: State) {
        for state in [State::Closed, State::Open, State::HalfOpen] {
            self.shared
                .state_gauge
                .with_label_values(&[&self.shared.name, state.as_str()])
                .set(i64::from(state == current));
        }
    }

    fn transition(&self, inner: &mut Inner, to: State) {
        if inner.state == to {
            return;
        }
        tracing::warn!(
            breaker = %self.shared.name, from = inner.state.as_str(), to = to.as_str(),
            "circuit breaker state changed"
        );
        inner.state = to;
        inner.generation += 1;
        inner.window.clear();
        inner.half_open_issued = 0;
        inner.half_open_results.clear();
        if to == State::Open {
            inner.opened_at = Instant::now();
            self.schedule_half_open(inner.generation);
        }
        self.publish(to);
    }

    /// Moves the breaker to half-open when its open duration is up even if no call
    /// comes (resilience4j's automatic transition), so the state gauge tells the truth
    /// between calls. Outside a runtime (plain unit tests) the next call does it.
    fn schedule_half_open(&self, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::downgrade(&self.shared);
        let after = self.shared.config.open_duration;
        runtime.spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(shared) = shared.upgrade() {
                let breaker = CircuitBreaker { shared };
                let mut inner = breaker.lock();
                // A later transition (closed again, re-opened) owns the state now.
                if inner.generation == generation {
                    breaker.advance(&mut inner);
                }
            }
        });
    }

    /// Moves an open breaker to half-open once its open duration has passed.
    fn advance(&self, inner: &mut Inner) {
        if inner.state == State::Open
            && inner.opened_at.elapsed() >= self.shared.config.open_duration
        {
            self.transition(inner, State::HalfOpen);
        }
    }

    /// The state now (an open breaker whose time is up reads half-open).
    pub fn state(&self) -> State {
        let mut inner = self.lock();
        self.advance(&mut inner);
        inner.state
    }

    /// Asks to make a call; `None` while open, or half-open with every trial call taken.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut inner = self.lock();
        self.advance(&mut inner);
        let half_open = match inner.state {
            State::Closed => false,
            State::HalfOpen if inner.half_open_issued < self.shared.config.half_open_calls => {
                inner.half_open_issued += 1;
                true
            }
            State::Open | State::HalfOpen => {
                self.shared
                    .calls
                    .with_label_values(&[&self.shared.name, "not_permitted"])
                    .inc();
                return None;
            }
        };
        Some(Permit {
            breaker: self.clone(),
            generation: inner.generation,
            half_open,
            reported: false,
        })
    }

    fn record(&self, generation: u64, half_open: bool, failed: bool) {
        let kind = if failed { "failed" } else { "successful" };
        self.shared
            .calls
            .with_label_values(&[&self.shared.name, kind])
            .inc();
        let config = &self.shared.config;
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let rate = |outcomes: &mut dyn Iterator<Item = &bool>| {
            let (mut n, mut failures) = (0usize, 0usize);
            for failed in outcomes {
                n += 1;
                failures += usize::from(*failed);
            }
            (
                n,
                if n == 0 {
                    0.0
                } else {
                    failures as f64 / n as f64
                },
            )
        };
        match inner.state {
            State::Closed => {
                inner.window.push_back(failed);
                while inner.window.len() > config.window_size {
                    inner.window.pop_front();
                }
                let (n, failure_rate) = rate(&mut inner.window.iter());
                if n >= config.minimum_calls && failure_rate >= config.failure_rate_threshold {
                    self.transition(&mut inner, State::Open);
                }
            }
            State::HalfOpen if half_open => {
                inner.half_open_results.push(failed);
                let (n, failure_rate) = rate(&mut inner.half_open_results.iter());
                if n >= config.half_open_calls {
                    let next = if failure_rate >= config.failure_rate_threshold {
                        State::Open
                    } else {
                        State::Closed
                    };
                    self.transition(&mut inner, next);
                }
            }
            State::HalfOpen | State::Open => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open: Duration) -> CircuitBreaker {
        let metrics = Metrics::new("t", "test").expect("registry");
        CircuitBreaker::new(
            "paymentService",
            BreakerConfig::payment_service(open),
            &metrics,
        )
        .expect("breaker")
    }

    fn fail(b: &CircuitBreaker, n: usize) {
        for _ in 0..n {
            b.try_acquire().expect("permitted").failure();
        }
    }

    #[test]
    fn it_opens_only_after_the_minimum_number_of_calls() {
        let b = breaker(Duration::from_secs(30));
        fail(&b, 4);
        assert_eq!(b.state(), State::Closed);
        fail(&b, 1);
        assert_eq!(b.state(), State::Open);
        assert!(b.try_acquire().is_none());
    }

    #[test]
    fn a_failure_rate_under_half_keeps_it_closed() {
        let b = breaker(Duration::from_secs(30));
        for i in 0..10 {
            let permit = b.try_acquire().expect("permitted");
            if i % 3 == 0 {
                permit.failure();
            } else {
                permit.success();
            }
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_open_duration_three_trial_calls_decide() {
        let b = breaker(Duration::from_secs(30));
        fail(&b, 5);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.state(), State::HalfOpen);
        let trials: Vec<Permit> = (0..3).map(|_| b.try_acquire().expect("trial")).collect();
        assert!(b.try_acquire().is_none(), "only three trial calls");
        for permit in trials {
            permit.success();
        }
        assert_eq!(b.state(), State::Closed);

        fail(&b, 5);
        tokio::time::advance(Duration::from_secs(31)).await;
        fail(&b, 2);
        b.try_acquire().expect("third trial").success();
        assert_eq!(b.state(), State::Open);
    }

    fn gauge(b: &CircuitBreaker, state: State) -> i64 {
        b.shared
            .state_gauge
            .with_label_values(&["paymentService", state.as_str()])
            .get()
    }

    #[tokio::test(start_paused = true)]
    async fn the_state_gauge_moves_to_half_open_when_the_open_duration_is_up_without_a_call() {
        let b = breaker(Duration::from_secs(30));
        fail(&b, 5);
        assert_eq!(gauge(&b, State::Open), 1);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(gauge(&b, State::Open), 1, "still open before its time");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(gauge(&b, State::Open), 0);
        assert_eq!(gauge(&b, State::HalfOpen), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_of_an_earlier_opening_does_not_move_a_later_one() {
        let b = breaker(Duration::from_secs(30));
        fail(&b, 5);
        tokio::time::sleep(Duration::from_secs(31)).await;
        fail(&b, 3);
        assert_eq!(gauge(&b, State::Open), 1, "re-opened by failed trials");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(gauge(&b, State::Open), 1, "its own 30 s are not up yet");
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(gauge(&b, State::HalfOpen), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreported_trial_call_frees_its_slot() {
        let b = breaker(Duration::from_secs(1));
        fail(&b, 5);
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..5 {
            drop(b.try_acquire().expect("slot freed each time"));
        }
        assert_eq!(b.state(), State::HalfOpen);
    }
}
