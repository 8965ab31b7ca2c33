//! The cache against a Redis of the test's own, stopped and started for real.

use crate::helpers::spawn_app_with;
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn product_hits(app: &crate::helpers::TestApp) -> f64 {
    app.metric(
        "cache_requests_total",
        &[("cache", "product"), ("result", "hit")],
    )
    .await
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
    let port = free_port();
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
