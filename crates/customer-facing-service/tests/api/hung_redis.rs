//! A Redis that hangs after the app has connected to it costs a request one call
//! timeout, not one per product: the app talks to the real Redis through a proxy that
//! can stop forwarding (the connections stay open and nothing is answered).

use crate::helpers::{redis_host_port, session, spawn_app_with};
use customer_facing_service::cache::Cache;
use customer_facing_service::catalog;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// The app's Redis call timeout.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// Products in the cart or the invalidation: 20 timeouts would be 6 s.
const PRODUCTS: usize = 20;
/// A generous bound for "one timeout": the machine is shared and noisy.
const ONE_TIMEOUT_BOUND: Duration = Duration::from_millis(3 * 300);

/// A TCP proxy to the test Redis that can hang: once frozen, it keeps every
/// connection open and forwards nothing more either way.
struct HangingProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl HangingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("a local address").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let (host, redis_port) = redis_host_port();
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect((host.as_str(), redis_port)).await else {
                    continue;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(pump(in_read, out_write, flag.clone()));
                tokio::spawn(pump(out_read, in_write, flag.clone()));
            }
        });
        Self { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding whatever it read while frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn product_cache_hits(app: &crate::helpers::TestApp) -> f64 {
    app.metric(
        "cache_requests_total",
        &[("cache", "product"), ("result", "hit")],
    )
    .await
}

#[tokio::test]
async fn a_20_line_cart_view_against_a_hung_redis_costs_one_timeout() {
    let proxy = HangingProxy::start().await;
    let port = proxy.port;
    let app = spawn_app_with(|s| {
        s.redis.host = "127.0.0.1".into();
        s.redis.port = port;
    })
    .await;
    let session = session();
    for i in 0..PRODUCTS {
        let product = app.create_product(&format!("HUNG-{i}"), 1.0, 10).await;
        let response = app.add_to_cart(&session, &product["id"], 1).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let path = format!("/api/v1/carts/{session}");
    // Through a working Redis: the first view fills the products in one pipeline, the
    // second reads all of them from Redis in one MGET.
    let cart = app.get_json(&path).await;
    assert_eq!(cart["items"].as_array().map(Vec::len), Some(PRODUCTS));
    let before = product_cache_hits(&app).await;
    app.get_json(&path).await;
    assert_eq!(product_cache_hits(&app).await - before, PRODUCTS as f64);

    proxy.freeze();
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let cart = app.get_json(&path).await;
        times.push(started.elapsed());
        assert_eq!(cart["items"].as_array().map(Vec::len), Some(PRODUCTS));
        assert!(cart["items"][0]["productSku"]
            .as_str()
            .is_some_and(|sku| sku.starts_with("HUNG-")));
        // Past the app's back-off, so the next view meets the hung Redis afresh.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    eprintln!("20-line cart view against a hung Redis: {times:?}");
    for time in times {
        assert!(
            time < ONE_TIMEOUT_BOUND,
            "a cart view took {time:?}; {PRODUCTS} timeouts would be {:?}",
            CALL_TIMEOUT * PRODUCTS as u32
        );
    }
}

#[tokio::test]
async fn a_20_product_invalidation_against_a_hung_redis_costs_one_timeout() {
    let proxy = HangingProxy::start().await;
    let mut settings = customer_facing_service::Settings::defaults().expect("default settings");
    settings.redis.host = "127.0.0.1".into();
    settings.redis.port = proxy.port;
    settings.redis.key_prefix = format!("{}:", platform::testing::unique_name("cfs"));
    let metrics = platform::metrics::Metrics::new("hung-redis-test", "test").expect("metrics");
    let cache = Cache::new(&settings.redis, &metrics).expect("a cache");
    let ids: Vec<Uuid> = (0..PRODUCTS).map(|_| Uuid::new_v4()).collect();
    let at = platform::time::now();
    // Connected and working before Redis hangs.
    assert_eq!(cache.counter("products:generation").await, Some(0));
    catalog::invalidate_products(&cache, &ids, at).await;
    assert_eq!(cache.counter("products:generation").await, Some(1));

    proxy.freeze();
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        catalog::invalidate_products(&cache, &ids, at).await;
        times.push(started.elapsed());
    }
    eprintln!("20-product invalidation against a hung Redis: {times:?}");
    for time in times {
        assert!(
            time < ONE_TIMEOUT_BOUND,
            "an invalidation took {time:?}; {} calls would be {:?}",
            PRODUCTS + 2,
            CALL_TIMEOUT * (PRODUCTS as u32 + 2)
        );
    }
}
