//! The cache against a Redis of the test's own, stopped and started for real.

use crate::helpers::{spawn_app_on, spawn_app_with, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private redis-server on `port`, killed on drop.
struct PrivateRedis(Child);

impl PrivateRedis {
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self(child))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Hits of the product cache in Redis and in the near cache in front of it.
async fn product_hits(app: &TestApp) -> f64 {
    let mut hits = 0.0;
    for cache in ["product", "product_near"] {
        hits += app
            .metric(
                "cache_requests_total",
                &[("cache", cache), ("result", "hit")],
            )
            .await;
    }
    hits
}

async fn near_hits(app: &TestApp, cache: &str) -> f64 {
    app.metric(
        "cache_requests_total",
        &[("cache", cache), ("result", "hit")],
    )
    .await
}

/// Reads `path` on `app` until its near cache `cache` answers it.
async fn read_until_near_hit(app: &TestApp, path: &str, cache: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = near_hits(app, cache).await;
        let body = app.get_json(path).await;
        if near_hits(app, cache).await > before {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never came from the near cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `path` on `app` until `check` holds of the answer, for at most a second.
async fn read_until(app: &TestApp, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let body = app.get_json(path).await;
        if check(&body) || tokio::time::Instant::now() >= deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_product_written_on_one_replica_is_dropped_from_every_near_cache() {
    let prefix = format!("{}:", platform::testing::unique_name("near"));
    let a = spawn_app_with(|s| s.redis.key_prefix = prefix.clone()).await;
    let b = spawn_app_on(a.db_options.clone(), |s| {
        s.redis.key_prefix = prefix.clone()
    })
    .await;
    let product = a.create_product("SKU-NEAR", 10.0, 5).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    let listing = "/api/v1/products?size=50";
    for app in [&a, &b] {
        assert_eq!(
            read_until_near_hit(app, &path, "product_near").await["price"],
            10.0
        );
        let page = read_until_near_hit(app, listing, "product_page_near").await;
        assert_eq!(page["content"][0]["price"], 10.0);
    }

    let updated = a
        .as_manager(Method::PUT, &path, Some(json!({"price": 12.0})))
        .await;
    assert_eq!(updated.status(), StatusCode::OK);

    // The writer's own replica answers the new state on the very next read.
    assert_eq!(a.get_json(&path).await["price"], 12.0);
    assert_eq!(a.get_json(listing).await["content"][0]["price"], 12.0);
    // The other replica drops its copies when the invalidation reaches it.
    let seen = read_until(&b, &path, |p| p["price"] == 12.0).await;
    assert_eq!(seen["price"], 12.0, "replica b still serves {seen}");
    let seen = read_until(&b, listing, |p| p["content"][0]["price"] == 12.0).await;
    assert_eq!(
        seen["content"][0]["price"], 12.0,
        "replica b still lists {seen}"
    );
}

#[tokio::test]
async fn a_checkout_drops_the_stock_it_took_from_the_near_cache() {
    let app = spawn_app_with(|_| {}).await;
    let product = app.create_product("SKU-NEAR-STOCK", 10.0, 5).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    assert_eq!(
        read_until_near_hit(&app, &path, "product_near").await["inventoryQuantity"],
        5
    );
    let session = crate::helpers::session();
    let added = app.add_to_cart(&session, &product["id"], 2).await;
    assert_eq!(added.status(), StatusCode::OK);
    let placed = app
        .checkout(&session, &platform::testing::unique_name("key"))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    assert_eq!(app.get_json(&path).await["inventoryQuantity"], 3);
}

async fn wait_for_redis(app: &crate::helpers::TestApp, status: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let health: Value = app
            .get("/actuator/health")
            .await
            .json()
            .await
            .expect("JSON");
        if health["components"]["redis"]["status"] == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis never {status}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn when_redis_stops_and_starts_again_the_catalogue_keeps_working_and_the_cache_comes_back() {
    let port = platform::testing::free_port().expect("a free port");
    let Some(redis) = PrivateRedis::start(port) else {
        eprintln!("redis-server is not installed; skipping");
        return;
    };
    let app = spawn_app_with(|s| {
        s.redis.host = "127.0.0.1".into();
        s.redis.port = port;
    })
    .await;
    wait_for_redis(&app, "UP").await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    app.get_json(&path).await;
    app.get_json(&path).await;
    assert!(product_hits(&app).await >= 1.0);

    drop(redis);
    wait_for_redis(&app, "DOWN").await;
    assert_eq!(app.get_json(&path).await["price"], 10.0);
    let updated = app
        .as_manager(Method::PUT, &path, Some(json!({"price": 11.0})))
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(app.get_json(&path).await["price"], 11.0);
    assert_eq!(
        app.get("/actuator/health/readiness").await.status(),
        StatusCode::OK
    );

    let _redis = PrivateRedis::start(port).expect("redis restarts");
    wait_for_redis(&app, "UP").await;
    let before = product_hits(&app).await;
    assert_eq!(app.get_json(&path).await["price"], 11.0);
    assert_eq!(app.get_json(&path).await["price"], 11.0);
    assert!(
        product_hits(&app).await > before,
        "the cache serves again after Redis is back"
    );
}

#[tokio::test]
async fn an_older_cart_state_never_replaces_a_newer_one_in_the_cache() {
    let mut settings = customer_facing_service::Settings::defaults().expect("settings");
    settings.redis.key_prefix = format!("{}:", platform::testing::unique_name("cfs"));
    let metrics = platform::metrics::Metrics::new("test", "test").expect("metrics");
    let cache =
        customer_facing_service::cache::Cache::new(&settings.redis, &metrics).expect("cache");
    let ttl = Duration::from_secs(60);
    cache
        .set_if_newer("k", &json!({"version": 5, "state": "new"}), 5, ttl)
        .await;
    cache
        .set_if_newer("k", &json!({"version": 3, "state": "late"}), 3, ttl)
        .await;
    let value: Value = cache.get("test", "k").await.expect("cached");
    assert_eq!(value["state"], "new");
    cache
        .set_if_newer("k", &json!({"version": 7, "state": "newer"}), 7, ttl)
        .await;
    let value: Value = cache.get("test", "k").await.expect("cached");
    assert_eq!(value["state"], "newer");
}

async fn wait_for_port(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server never listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cache_works_over_tls_with_the_servers_ca_and_not_without_it() {
    let dir = std::env::temp_dir().join(platform::testing::unique_name("cfs"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let platform::testing::TlsFiles { ca, cert, key } =
        platform::testing::private_ca_and_certificate(&dir, "localhost").expect("certificates");
    let port = platform::testing::free_port().expect("a free port");
    // TLS only: the plain port is closed, so nothing can pass in the clear.
    let redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-auth-clients",
            "no",
        ])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .arg("--tls-ca-cert-file")
        .arg(&ca)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(PrivateRedis)
        .expect("redis-server");
    wait_for_port(port).await;

    // Each cache registers its counters: one registry each.
    let metrics = || platform::metrics::Metrics::new("test", "test").expect("metrics");
    let mut settings = customer_facing_service::Settings::defaults().expect("settings");
    settings.redis.host = "localhost".into();
    settings.redis.port = port;
    settings.redis.key_prefix = format!("{}:", platform::testing::unique_name("cfs"));
    settings.redis.tls = true;
    settings.redis.ca_file = Some(ca.clone());
    let cache =
        customer_facing_service::cache::Cache::new(&settings.redis, &metrics()).expect("cache");
    cache
        .set_if_newer(
            "k",
            &json!({"state": "over TLS"}),
            1,
            Duration::from_secs(60),
        )
        .await;
    let value: Option<Value> = cache.get("test", "k").await;
    assert_eq!(value.expect("cached over TLS")["state"], "over TLS");

    // Mozilla's roots do not include the private CA: no connection, so no cache.
    settings.redis.ca_file = None;
    let untrusting =
        customer_facing_service::cache::Cache::new(&settings.redis, &metrics()).expect("cache");
    assert_eq!(untrusting.get::<Value>("test", "k").await, None);

    drop(redis);

    settings.redis.ca_file = Some(dir.join("missing.pem"));
    let err = customer_facing_service::cache::Cache::new(&settings.redis, &metrics())
        .err()
        .expect("a CA file that cannot be read stops start-up");
    assert!(err.to_string().contains("REDIS_CA_FILE"), "{err}");
    settings.redis.ca_file = Some(ca);
    settings.redis.tls = false;
    let err = customer_facing_service::cache::Cache::new(&settings.redis, &metrics())
        .err()
        .expect("a CA file without TLS stops start-up");
    assert!(err.to_string().contains("REDIS_TLS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
