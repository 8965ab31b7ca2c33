use crate::support::spawn;
use axum::Router;
use platform::actuator::HealthIndicator;
use platform::config::DatabaseSettings;
use platform::db::Db;
use std::str::FromStr;

fn db_at(url: &str) -> Db {
    let settings = DatabaseSettings {
        database_url: Some(sqlx::postgres::PgConnectOptions::from_str(url).unwrap()),
        max_connections: 2,
        acquire_timeout_secs: 1,
    };
    Db::new(platform::db::pool(
        &settings,
        sqlx::postgres::PgConnectOptions::new(),
    ))
}

#[tokio::test]
async fn readiness_is_up_while_postgres_answers_and_health_shows_the_component() {
    let db = db_at(&platform::testing::server_url());
    let indicators: Vec<Box<dyn HealthIndicator>> = vec![Box::new(db.health_indicator())];
    let app = spawn(Router::new(), indicators).await;
    db.register_metrics(&app.metrics, "test_db").unwrap();
    let ready = app
        .client
        .get(format!("{}/actuator/health/readiness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let health: serde_json::Value = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["components"]["db"]["status"], "UP");
    let live = app
        .client
        .get(format!("{}/actuator/health/liveness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let metrics = app
        .client
        .get(format!("{}/actuator/prometheus", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "hikaricp_connections_active",
        "hikaricp_connections_idle",
        "hikaricp_connections_pending",
        "hikaricp_connections_max",
    ] {
        assert!(metrics.contains(&format!("{name}{{")), "{name} missing");
    }
    assert!(metrics.contains("pool=\"test_db\""));
}

#[tokio::test]
async fn readiness_fails_closed_when_postgres_is_unreachable() {
    let db = db_at("postgres://postgres@127.0.0.1:1/postgres");
    let indicators: Vec<Box<dyn HealthIndicator>> = vec![Box::new(db.health_indicator())];
    let app = spawn(Router::new(), indicators).await;
    let ready = app
        .client
        .get(format!("{}/actuator/health/readiness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["components"]["db"]["status"], "DOWN");
    let live = app
        .client
        .get(format!("{}/actuator/health/liveness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on dependencies"
    );
}

#[tokio::test]
async fn an_optional_component_down_does_not_make_the_instance_unready() {
    let cache = platform::actuator::FnIndicator::new("redis", false, || {
        Box::pin(async { platform::actuator::ComponentHealth::down("connection refused") })
    });
    let app = spawn(Router::new(), vec![Box::new(cache)]).await;
    let ready = app
        .client
        .get(format!("{}/actuator/health/readiness", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let health: serde_json::Value = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["components"]["redis"]["status"], "DOWN");
}

#[tokio::test]
async fn readiness_is_out_of_service_once_shutdown_begins() {
    let app = spawn(Router::new(), vec![]).await;
    let url = format!("{}/actuator/health/readiness", app.address);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    app.shutdown.cancel();
    // The listener stops accepting once the server drains; either outcome is unready.
    if let Ok(response) = app.client.get(&url).send().await {
        assert_eq!(response.status(), 503);
    }
}

/// Raw driver text of the kind that must never leave the process.
const RAW_ERROR: &str =
    "password authentication failed for user \"orders_rw\" at db-primary.internal:5432";

fn keys() -> platform::auth::JwtKeys {
    platform::auth::JwtKeys::from_settings(
        &platform::config::JwtSettings {
            secret: platform::config::Secret::new(platform::auth::DEMO_SECRET),
            previous_secrets: vec![],
            issuer: "ecommerce-platform-dev".into(),
            expiration_minutes: 15,
        },
        true,
    )
    .unwrap()
}

/// A required `db` that fails with [`RAW_ERROR`] and an optional `gateway` that is up
/// and names its URL.
fn detailed_indicators() -> Vec<Box<dyn HealthIndicator>> {
    use platform::actuator::{ComponentHealth, FnIndicator};
    vec![
        Box::new(FnIndicator::new("db", true, || {
            Box::pin(async { ComponentHealth::down(RAW_ERROR) })
        })),
        Box::new(FnIndicator::new("gateway", false, || {
            Box::pin(async {
                ComponentHealth::up().with_detail("url", "http://gateway.internal:8082")
            })
        })),
    ]
}

async fn health_as(app: &crate::support::TestApp, token: Option<&str>) -> String {
    let mut request = app.client.get(format!("{}/actuator/health", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn anonymous_callers_see_each_component_status_but_no_details() {
    let app =
        crate::support::spawn_with_keys(Router::new(), detailed_indicators(), Some(keys())).await;
    let body = health_as(&app, None).await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "DOWN");
    assert_eq!(health["components"]["db"]["status"], "DOWN");
    assert_eq!(health["components"]["gateway"]["status"], "UP");
    assert!(
        health["components"]["db"].get("details").is_none(),
        "{body}"
    );
    assert!(
        health["components"]["gateway"].get("details").is_none(),
        "{body}"
    );
    assert!(!body.contains("gateway.internal"), "{body}");
    assert!(!body.contains("orders_rw"), "{body}");
}

#[tokio::test]
async fn a_customer_token_sees_no_more_than_an_anonymous_caller() {
    let keys = keys();
    let token = keys.sign("alice", &["CUSTOMER"]);
    let app =
        crate::support::spawn_with_keys(Router::new(), detailed_indicators(), Some(keys)).await;
    let body = health_as(&app, Some(&token)).await;
    assert!(!body.contains("details"), "{body}");
}

#[tokio::test]
async fn a_manager_sees_details_but_never_the_raw_error_text() {
    let keys = keys();
    let token = keys.sign("manager", &[platform::auth::ROLE_MANAGER]);
    let app =
        crate::support::spawn_with_keys(Router::new(), detailed_indicators(), Some(keys)).await;
    let body = health_as(&app, Some(&token)).await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["components"]["gateway"]["details"]["url"],
        "http://gateway.internal:8082"
    );
    assert_eq!(
        health["components"]["db"]["details"]["error"],
        "error; see the service log"
    );
    assert!(!body.contains("orders_rw"), "{body}");
    assert!(!body.contains("db-primary"), "{body}");
}

#[tokio::test]
async fn a_service_without_jwt_keys_never_shows_details_even_to_a_manager() {
    let token = keys().sign("manager", &[platform::auth::ROLE_MANAGER]);
    let app = spawn(Router::new(), detailed_indicators()).await;
    let body = health_as(&app, Some(&token)).await;
    assert!(!body.contains("details"), "{body}");
    assert!(body.contains("\"status\""), "{body}");
}

#[tokio::test]
async fn the_raw_error_goes_to_the_service_log_instead_of_the_body() {
    let app = spawn(Router::new(), detailed_indicators()).await;
    // The first refresh ran at construction; the first request waits for it.
    let body = health_as(&app, None).await;
    assert!(!body.contains("orders_rw"), "{body}");
    let logged = crate::support::log_lines().iter().any(|l| {
        l.to_string().contains("health component is down") && l.to_string().contains("orders_rw")
    });
    assert!(logged, "the raw error is logged");
}

#[tokio::test]
async fn readiness_flips_to_503_within_seconds_after_a_required_dependency_goes_down_and_back_to_200_after_it_returns(
) {
    use platform::actuator::{ComponentHealth, FnIndicator};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let db = FnIndicator::new("db", true, move || {
        let up = flag.load(Ordering::SeqCst);
        Box::pin(async move {
            if up {
                ComponentHealth::up()
            } else {
                ComponentHealth::down("Connection refused (os error 111)")
            }
        })
    });
    let app = spawn(Router::new(), vec![Box::new(db)]).await;
    let url = format!("{}/actuator/health/readiness", app.address);
    let status = || async { app.client.get(&url).send().await.unwrap().status() };
    assert_eq!(status().await, 200, "ready at once after start");
    let wait_for = |want: u16| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
        loop {
            if status().await == want {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    up.store(false, Ordering::SeqCst);
    assert!(wait_for(503).await, "unready within a few seconds");
    up.store(true, Ordering::SeqCst);
    assert!(wait_for(200).await, "ready again within a few seconds");
}
