//! Closed unless opened: outside local development the service refuses to serve a
//! database where a demo user still has its well-known password.

use crate::helpers::spawn_app;
use customer_facing_service::{Application, Settings};
use reqwest::StatusCode;

fn staging_on(database: sqlx::postgres::PgConnectOptions) -> Settings {
    let mut settings = Settings::defaults().expect("settings");
    settings.common.server_port = Some(0);
    settings.database.database_url = Some(database);
    settings.common.environment = "staging".parse().expect("environment");
    settings.jwt.secret = platform::config::Secret::new("a-staging-secret-of-at-least-32-bytes");
    settings
}

#[tokio::test]
async fn staging_does_not_start_on_a_database_where_the_demo_manager_keeps_its_password() {
    let local = spawn_app().await;
    assert_eq!(
        local.login("manager", "manager123").await.status(),
        StatusCode::OK,
        "local development seeds the demo users"
    );
    let error = Application::build(staging_on(local.db_options.clone()))
        .await
        .err()
        .expect("a demo password outside local development must stop start-up");
    let text = error.to_string();
    assert!(text.contains("'manager'"), "{text}");
    assert!(text.contains("demo password"), "{text}");
    assert!(
        !text.contains("manager123"),
        "the password is never echoed: {text}"
    );

    // Once the password is changed (as `opsctl manager rotate-password` does), it starts.
    for user in ["manager", "guest"] {
        let hash = platform::auth::hash_password("a-password-nobody-has-read").expect("hash");
        sqlx::query("UPDATE managers SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(user)
            .execute(&local.db)
            .await
            .expect("password changed");
    }
    let started = Application::build(staging_on(local.db_options.clone())).await;
    assert!(started.is_ok(), "{:?}", started.err());
}
