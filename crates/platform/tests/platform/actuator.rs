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
