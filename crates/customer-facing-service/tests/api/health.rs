use crate::helpers::{spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_lists_every_dependency_and_readiness_is_up() {
    let app = spawn_app().await;
    let health: Value = app.get_json("/actuator/health").await;
    assert_eq!(health["status"], "UP");
    for component in [
        "db",
        "redis",
        "kafka",
        "outbox",
        "livenessState",
        "readinessState",
    ] {
        assert!(
            health["components"][component]["status"].is_string(),
            "{component} missing: {health}"
        );
    }
    assert_eq!(health["components"]["db"]["status"], "UP");
    assert_eq!(health["components"]["redis"]["status"], "UP");
    let readiness = app.get("/actuator/health/readiness").await;
    assert_eq!(readiness.status(), StatusCode::OK);
    let liveness = app.get("/actuator/health/liveness").await;
    assert_eq!(liveness.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_callers_see_component_statuses_and_a_manager_also_sees_details() {
    let app = spawn_app().await;
    let anonymous = app
        .get("/actuator/health")
        .await
        .text()
        .await
        .expect("body");
    let health: Value = serde_json::from_str(&anonymous).expect("JSON");
    assert_eq!(health["components"]["db"]["status"], "UP", "{anonymous}");
    assert!(!anonymous.contains("details"), "{anonymous}");
    let managed: Value = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .bearer_auth(app.manager_token().await)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        managed["components"]["db"]["details"]["database"], "PostgreSQL",
        "{managed}"
    );
    assert!(managed["components"]["outbox"]["details"]["pending"].is_number());
}

#[tokio::test]
async fn with_redis_unreachable_a_manager_sees_a_short_description_not_the_raw_error() {
    let app = spawn_app_with(|s| {
        s.redis.host = "127.0.0.1".into();
        s.redis.port = 1;
    })
    .await;
    let body = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .bearer_auth(app.manager_token().await)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let health: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        health["components"]["redis"]["details"]["error"], "unreachable",
        "{body}"
    );
    assert!(!body.contains("127.0.0.1"), "{body}");
    assert!(!body.contains("os error"), "{body}");
}

#[tokio::test]
async fn with_redis_unreachable_health_shows_redis_down_and_readiness_stays_up() {
    let app = spawn_app_with(|s| {
        s.redis.host = "127.0.0.1".into();
        s.redis.port = 1;
    })
    .await;
    let health: Value = app.get_json("/actuator/health").await;
    assert_eq!(health["status"], "UP");
    assert_eq!(health["components"]["redis"]["status"], "DOWN");
    let readiness = app.get("/actuator/health/readiness").await;
    assert_eq!(readiness.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_postgres_unreachable_readiness_is_503() {
    let app = spawn_app().await;
    let ready = app.get("/actuator/health/readiness").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.db)
        .await
        .expect("name");
    // Renaming the database (after closing its sessions) makes every new connection of
    // the app fail, as if PostgreSQL were gone.
    let server = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&platform::testing::server_url())
        .await
        .expect("server");
    // Logging in needs the database: the token is taken while it is still there.
    let token = app.manager_token().await;
    app.db.close().await;
    // The app's background jobs reconnect at any time: retry until the rename wins.
    let mut attempts = 0;
    loop {
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&server)
        .await
        .expect("terminate all");
        let renamed = sqlx::query(&format!(
            "ALTER DATABASE \"{name}\" RENAME TO \"{name}_gone\""
        ))
        .execute(&server)
        .await;
        match renamed {
            Ok(_) => break,
            Err(e) if attempts < 50 => {
                attempts += 1;
                eprintln!("rename retried: {e}");
            }
            Err(e) => panic!("cannot rename the database: {e}"),
        }
    }
    wait_for_readiness(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    let health = app.get("/actuator/health").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The driver's error names the missing database; even a manager sees only a
    // short description of it.
    let body = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let managed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(managed["components"]["db"]["status"], "DOWN", "{body}");
    assert!(
        managed["components"]["db"]["details"]["error"].is_string(),
        "{body}"
    );
    assert!(!body.contains(&name), "{body}");
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}_gone\" RENAME TO \"{name}\""
    ))
    .execute(&server)
    .await
    .expect("rename back");
    wait_for_readiness(&app, StatusCode::OK).await;
}

/// Readiness answers from checks refreshed every 2 s: it changes within a few seconds.
async fn wait_for_readiness(app: &crate::helpers::TestApp, want: StatusCode) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = app.get("/actuator/health/readiness").await.status();
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness stayed {status}, never {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn prometheus_exposes_the_business_pool_and_outbox_series() {
    let app = spawn_app().await;
    app.get_json("/api/v1/carts/metrics-session").await;
    let text = app.metrics().await;
    assert!(
        text.contains("uri=\"/api/v1/carts/{sessionId}\""),
        "requests are labelled by the original's route template"
    );
    for series in [
        "checkout_attempt_total",
        "checkout_success_total",
        "checkout_failures_total",
        "cart_items_added_total",
        "checkout_duration_seconds_bucket",
        "hikaricp_connections_active",
        "outbox_pending_rows",
        "outbox_failed_rows",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    assert!(text.contains("application=\"customer-facing-service\""));
}
