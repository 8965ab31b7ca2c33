//! The near cache: catalogue answers kept in this process, already serialized, in
//! front of Redis.
//!
//! A hit costs a map lookup and no Redis round trip, no decoding and no encoding. It
//! stays correct because of one rule: entries are stored and served only while this
//! process is subscribed to the catalogue's invalidation channel in Redis. Every
//! product write clears the writer's own copy before it answers and publishes the
//! product ids on that channel, so every replica drops its copy too (within the time a
//! Redis message takes). When the subscription drops, or a heartbeat on it goes
//! unanswered, the near cache empties and stands aside until it is subscribed again,
//! because a message could have been missed meanwhile; reads then go to Redis and
//! PostgreSQL as before.
//!
//! A load that started before an invalidation never stores what it read: every
//! invalidation bumps an epoch, and a store is refused unless the epoch is still the
//! one the load saw when it started. Entries also expire after the near-cache TTL,
//! and the whole cache is bounded in bytes.

use axum::body::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most bytes the near cache holds; past it, it starts over empty.
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Time between two heartbeats on the subscription.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long connecting, subscribing or a heartbeat may take.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// Wait before subscribing again after the subscription failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// What an invalidation of every listing (and no single product) carries.
const ALL_PAGES: &str = "*";

/// The near cache; cheap to clone.
#[derive(Clone)]
pub struct NearCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when disabled (TTL 0).
    ttl: Option<Duration>,
    /// Whether the invalidation subscription is up; nothing is served or stored without it.
    live: AtomicBool,
    /// Read-locked by every hit, so the hot path never waits for another reader.
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    epoch: u64,
    bytes: usize,
    products: HashMap<Uuid, Entry>,
    pages: HashMap<String, Entry>,
}

struct Entry {
    body: Bytes,
    stored: Instant,
}

/// Where a load stands against invalidations: taken before it reads, handed back to
/// store what it read.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl State {
    fn clear(&mut self) {
        self.epoch += 1;
        self.bytes = 0;
        self.products.clear();
        self.pages.clear();
    }

    fn invalidate(&mut self, ids: &[Uuid]) {
        self.epoch += 1;
        for id in ids {
            if let Some(entry) = self.products.remove(id) {
                self.bytes -= entry.body.len();
            }
        }
        for entry in self.pages.values() {
            self.bytes -= entry.body.len();
        }
        self.pages.clear();
    }

    /// Makes room for `len` more bytes; false when one entry that large cannot fit.
    fn reserve(&mut self, len: usize) -> bool {
        if len > MAX_BYTES / 4 {
            return false;
        }
        if self.bytes + len > MAX_BYTES {
            self.clear();
        }
        self.bytes += len;
        true
    }
}

impl NearCache {
    /// A near cache whose entries live `ttl`; zero disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                ttl: (!ttl.is_zero()).then_some(ttl),
                live: AtomicBool::new(false),
                state: RwLock::new(State::default()),
            }),
        }
    }

    // The state is only maps and counters: a panic elsewhere cannot leave it torn, so a
    // poisoned lock is used as it is.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn serving(&self) -> Option<Duration> {
        self.inner
            .ttl
            .filter(|_| self.inner.live.load(Ordering::Acquire))
    }

    /// Whether answers are being served from this process.
    fn is_live(&self) -> bool {
        self.serving().is_some()
    }

    /// The product's serialized answer, if held and fresh.
    pub fn product(&self, id: Uuid) -> Option<Bytes> {
        let ttl = self.serving()?;
        fresh(self.read().products.get(&id), ttl)
    }

    /// The listing's serialized answer, if held and fresh.
    pub fn page(&self, key: &str) -> Option<Bytes> {
        let ttl = self.serving()?;
        fresh(self.read().pages.get(key), ttl)
    }

    /// Taken before a load reads Redis or PostgreSQL; `None` when nothing may be stored.
    pub fn ticket(&self) -> Option<Ticket> {
        self.serving()?;
        Some(Ticket(self.read().epoch))
    }

    /// Stores a product's answer unless an invalidation came after `ticket`.
    pub fn store_product(&self, ticket: Ticket, id: Uuid, body: Bytes) {
        self.store(ticket, body, |state, entry| {
            state.products.insert(id, entry)
        });
    }

    /// Stores a listing's answer unless an invalidation came after `ticket`.
    pub fn store_page(&self, ticket: Ticket, key: String, body: Bytes) {
        self.store(ticket, body, |state, entry| state.pages.insert(key, entry));
    }

    fn store(
        &self,
        ticket: Ticket,
        body: Bytes,
        insert: impl FnOnce(&mut State, Entry) -> Option<Entry>,
    ) {
        let mut state = self.state();
        if state.epoch == ticket.0 && self.is_live() && state.reserve(body.len()) {
            if let Some(old) = insert(&mut state, Entry::new(body)) {
                state.bytes -= old.body.len();
            }
        }
    }

    /// Drops the products `ids` and every listing from this process.
    pub fn invalidate(&self, ids: &[Uuid]) {
        self.state().invalidate(ids);
    }

    fn set_live(&self, live: bool) {
        let mut state = self.state();
        state.clear();
        self.inner.live.store(live, Ordering::Release);
    }

    /// Keeps the invalidation subscription on `channel` up until `shutdown`; the near
    /// cache serves only while it is.
    pub async fn run_subscriber(
        self,
        client: redis::Client,
        channel: String,
        shutdown: CancellationToken,
    ) {
        if self.inner.ttl.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                reason = self.subscribe_once(&client, &channel) => {
                    if self.inner.live.load(Ordering::Acquire) {
                        tracing::warn!(%reason, "catalogue invalidations lost; near cache off until resubscribed");
                    } else {
                        tracing::debug!(%reason, "catalogue invalidation subscription failed");
                    }
                    self.set_live(false);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
            }
        }
        self.set_live(false);
    }

    /// Subscribes, serves invalidations until the subscription fails, and says why.
    async fn subscribe_once(&self, client: &redis::Client, channel: &str) -> String {
        let pubsub = match tokio::time::timeout(CALL_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "connecting timed out".into(),
        };
        let (mut sink, mut messages) = pubsub.split();
        match tokio::time::timeout(CALL_TIMEOUT, sink.subscribe(channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "subscribing timed out".into(),
        }
        // Whatever was written before this point is in Redis already or will be
        // announced on the channel: from here on, storing is safe.
        self.set_live(true);
        tracing::info!(
            channel,
            "near cache on: subscribed to catalogue invalidations"
        );
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => match message.get_payload::<String>() {
                        Ok(payload) => self.apply(&payload),
                        // Unreadable: drop everything rather than guess.
                        Err(_) => self.state().clear(),
                    },
                    None => return "subscription closed".into(),
                },
                _ = heartbeat.tick() => {
                    match tokio::time::timeout(CALL_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return e.to_string(),
                        Err(_) => return "heartbeat timed out".into(),
                    }
                }
            }
        }
    }

    fn apply(&self, payload: &str) {
        let ids: Option<Vec<Uuid>> = payload
            .split(',')
            .filter(|part| !part.is_empty() && *part != ALL_PAGES)
            .map(|part| Uuid::parse_str(part).ok())
            .collect();
        match ids {
            Some(ids) => self.invalidate(&ids),
            None => self.state().clear(),
        }
    }
}

/// What a write publishes on the invalidation channel for products `ids`.
pub fn message(ids: &[Uuid]) -> String {
    if ids.is_empty() {
        return ALL_PAGES.to_owned();
    }
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Entry {
    fn new(body: Bytes) -> Self {
        Self {
            body,
            stored: Instant::now(),
        }
    }
}

fn fresh(entry: Option<&Entry>, ttl: Duration) -> Option<Bytes> {
    entry
        .filter(|e| e.stored.elapsed() < ttl)
        .map(|e| e.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache() -> NearCache {
        let cache = NearCache::new(Duration::from_secs(30));
        cache.set_live(true);
        cache
    }

    #[test]
    fn nothing_is_served_or_stored_while_unsubscribed() {
        let cache = NearCache::new(Duration::from_secs(30));
        assert!(cache.ticket().is_none());
        let id = Uuid::new_v4();
        cache.store_product(Ticket(0), id, Bytes::from_static(b"{}"));
        assert!(cache.product(id).is_none());
    }

    #[test]
    fn a_load_that_started_before_an_invalidation_does_not_store() {
        let cache = live_cache();
        let id = Uuid::new_v4();
        let ticket = cache.ticket().unwrap();
        cache.invalidate(&[Uuid::new_v4()]);
        cache.store_product(ticket, id, Bytes::from_static(b"old"));
        assert!(cache.product(id).is_none());
        let ticket = cache.ticket().unwrap();
        cache.store_product(ticket, id, Bytes::from_static(b"new"));
        assert_eq!(cache.product(id).unwrap(), Bytes::from_static(b"new"));
    }

    #[test]
    fn an_invalidation_drops_its_products_and_every_listing() {
        let cache = live_cache();
        let (written, other) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = cache.ticket().unwrap();
        cache.store_product(ticket, written, Bytes::from_static(b"a"));
        cache.store_product(ticket, other, Bytes::from_static(b"b"));
        cache.store_page(ticket, "page".into(), Bytes::from_static(b"[]"));
        cache.apply(&message(&[written]));
        assert!(cache.product(written).is_none());
        assert!(cache.page("page").is_none());
        assert!(cache.product(other).is_some());
        assert_eq!(cache.state().bytes, 1);
    }

    #[test]
    fn losing_the_subscription_empties_the_cache() {
        let cache = live_cache();
        let id = Uuid::new_v4();
        cache.store_product(cache.ticket().unwrap(), id, Bytes::from_static(b"a"));
        cache.set_live(false);
        cache.set_live(true);
        assert!(cache.product(id).is_none());
    }

    #[test]
    fn an_unreadable_message_drops_everything() {
        let cache = live_cache();
        let id = Uuid::new_v4();
        cache.store_product(cache.ticket().unwrap(), id, Bytes::from_static(b"a"));
        cache.apply("not-a-uuid");
        assert!(cache.product(id).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_byte_budget() {
        let cache = live_cache();
        let body = Bytes::from(vec![b'x'; MAX_BYTES / 8]);
        for _ in 0..20 {
            cache.store_product(cache.ticket().unwrap(), Uuid::new_v4(), body.clone());
            assert!(cache.state().bytes <= MAX_BYTES);
        }
        let too_big = Bytes::from(vec![b'x'; MAX_BYTES / 2]);
        let id = Uuid::new_v4();
        cache.store_product(cache.ticket().unwrap(), id, too_big);
        assert!(cache.product(id).is_none());
    }

    #[test]
    fn a_zero_ttl_disables_the_near_cache() {
        let cache = NearCache::new(Duration::ZERO);
        cache.set_live(true);
        assert!(cache.ticket().is_none());
    }
}
