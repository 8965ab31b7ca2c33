use crate::helpers::{spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn a_manager_logs_in_and_gets_a_bearer_token_with_a_key_id_and_roles() {
    let app = spawn_app().await;
    let response = app.login("manager", "manager123").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    let token = body["accessToken"].as_str().expect("token");
    // The platform's verifier requires HS256 and a `kid` naming a known key.
    let settings = customer_facing_service::Settings::defaults().expect("settings");
    let keys = platform::auth::JwtKeys::from_settings(&settings.jwt, true).expect("keys");
    let claims = keys.verify(token).expect("a valid token");
    assert_eq!(claims.sub, "manager");
    assert_eq!(claims.iss, "ecommerce-platform-dev");
    assert_eq!(claims.roles, vec!["MANAGER".to_owned()]);
}

#[tokio::test]
async fn wrong_credentials_get_401_with_the_originals_null_body() {
    let app = spawn_app().await;
    for (user, password) in [("manager", "wrong"), ("nobody", "manager123")] {
        let response = app.login(user, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({"accessToken": null, "tokenType": null, "expiresIn": 0})
        );
    }
}

#[tokio::test]
async fn manager_routes_need_a_token_and_the_manager_role() {
    let app = spawn_app().await;
    let body = json!({"name": "Books"});
    let anonymous = app
        .request(Method::POST, "/api/v1/categories")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert!(anonymous.text().await.expect("body").is_empty());

    let guest: Value = app
        .login("guest", "guest123")
        .await
        .json()
        .await
        .expect("JSON");
    let forbidden = app
        .request(Method::POST, "/api/v1/categories")
        .bearer_auth(guest["accessToken"].as_str().expect("token"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.headers()["www-authenticate"]
        .to_str()
        .expect("header")
        .contains("insufficient_scope"));
    assert!(forbidden.text().await.expect("body").is_empty());
    assert_eq!(app.count("categories").await, 0);
}

#[tokio::test]
async fn a_bad_token_on_a_public_route_is_401() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/products")
        .bearer_auth("not.a.token")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .expect("header")
        .contains("invalid_token"));
    let anonymous = app.get("/api/v1/products").await;
    assert_eq!(anonymous.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_login_without_credentials_is_a_validation_problem() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"password": "x"}))
        .send()
        .await
        .expect("request");
    let body = crate::helpers::assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["fieldErrors"]["username"], "Username is required");
}

#[tokio::test]
async fn production_refuses_the_demo_secret() {
    // Production refuses to start before it touches the database.
    let database = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(1)
        .database("never_used");
    let mut settings = customer_facing_service::Settings::defaults().expect("settings");
    settings.common.server_port = Some(0);
    settings.database.database_url = Some(database);
    settings.common.environment = "production".parse().expect("environment");
    let error = customer_facing_service::Application::build(settings)
        .await
        .err()
        .expect("production with the demo secret must not start");
    assert!(error.to_string().contains("demo JWT secret"), "{error}");
}

#[tokio::test]
async fn production_has_no_demo_users() {
    let app = spawn_app_with(|s| {
        s.common.environment = "production".parse().expect("environment");
        s.jwt.secret = platform::config::Secret::new("a-production-secret-of-at-least-32-bytes");
    })
    .await;
    let response = app.login("manager", "manager123").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("managers").await, 0);
}

#[tokio::test]
async fn after_a_secret_rotation_old_tokens_still_work_and_new_ones_use_the_new_key() {
    const OLD: &str = "the-old-secret-that-is-at-least-32-bytes";
    const NEW: &str = "the-new-secret-that-is-at-least-32-bytes";
    let before = spawn_app_with(|s| s.jwt.secret = platform::config::Secret::new(OLD)).await;
    let old_token = before.manager_token().await;
    let rotated = spawn_app_with(|s| {
        s.jwt.secret = platform::config::Secret::new(NEW);
        s.jwt.previous_secrets = vec![platform::config::Secret::new(OLD)];
    })
    .await;
    let with_old = rotated
        .request(Method::POST, "/api/v1/categories")
        .bearer_auth(&old_token)
        .json(&json!({"name": "Rotated"}))
        .send()
        .await
        .expect("request");
    assert_eq!(with_old.status(), StatusCode::CREATED);
    let new_token = rotated.manager_token().await;
    let on_old_only = before
        .request(Method::GET, "/api/v1/categories")
        .bearer_auth(&new_token)
        .send()
        .await
        .expect("request");
    assert_eq!(on_old_only.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_wrong_passwords_for_one_name_meet_429_with_retry_after_and_other_names_still_log_in(
) {
    let app = spawn_app().await;
    // Verifications are slow in a debug build, so the bucket refills a little while
    // this runs: keep failing until the limit bites, then the right password waits too.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&StatusCode::TOO_MANY_REQUESTS) && statuses.len() < 40 {
        statuses.push(app.login("manager", "wrong-password").await.status());
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    let refused = app.login("manager", "manager123").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.login("guest", "guest123").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_flood_of_bogus_logins_is_bounded_and_a_catalogue_read_still_answers() {
    let app = spawn_app().await;
    let logins: Vec<_> = (0..40)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/auth/login", app.address);
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"username": format!("nobody-{i}"), "password": "x"}))
                    .send()
                    .await
                    .expect("login answered");
                (
                    response.status(),
                    response.headers().contains_key("retry-after"),
                )
            })
        })
        .collect();
    let read = app.get("/api/v1/products").await;
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "the catalogue answers during the flood"
    );
    for login in logins {
        let (status, retry_after) = login.await.expect("joined");
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after, "{status} carries Retry-After")
            }
            other => panic!("unexpected {other}"),
        }
    }
}

/// A client of `app` whose connections come from `local` (any 127.x address reaches
/// the loopback listener), so tests can be several clients.
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().expect("an address"))
        .build()
        .expect("a client")
}

async fn login_from(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> StatusCode {
    let mut request = client
        .post(format!("{}/api/v1/auth/login", app.address))
        .json(&json!({"username": username, "password": password}));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    request.send().await.expect("login answered").status()
}

/// Wrong passwords for `manager` from `client` until one is refused. Verifications
/// are slow in a debug build, so the bucket refills a little meanwhile: the first ten
/// are checked (401), and the refusal comes before the per-client limit (thirty).
async fn guess_until_refused(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
) {
    let mut statuses = Vec::new();
    while statuses.last() != Some(&StatusCode::TOO_MANY_REQUESTS) && statuses.len() < 25 {
        statuses.push(login_from(app, client, forwarded_for, "manager", "wrong").await);
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_parallel_burst_of_guesses_gets_no_more_verifications_than_the_limit() {
    let app = spawn_app().await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/auth/login", app.address);
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"username": "manager", "password": format!("guess-{i}")}))
                    .send()
                    .await
                    .expect("login answered")
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("joined"));
    }
    // Ten attempts a minute for one name from one client: at most ten guesses were
    // let through to the password check (401, or 503 when it was busy); every other
    // one was refused before it.
    let through = statuses
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(through <= 10, "{through} guesses got through: {statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| matches!(s.as_u16(), 401 | 429 | 503)));
}

#[tokio::test]
async fn a_refused_attempt_costs_a_token_like_a_wrong_password() {
    let app = spawn_app().await;
    for _ in 0..30 {
        let malformed = app
            .request(Method::POST, "/api/v1/auth/login")
            .header("Content-Type", "application/json")
            .body("{\"username\": \"manager\", ")
            .send()
            .await
            .expect("answered");
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    }
    // Thirty attempts a minute per client: the right password waits its turn too.
    let response = app.login("manager", "manager123").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn wrong_passwords_from_one_client_do_not_lock_the_user_out_of_another() {
    let app = spawn_app().await;
    let (guesser, manager) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    guess_until_refused(&app, &guesser, None).await;
    let locked = login_from(&app, &guesser, None, "manager", "manager123").await;
    assert_eq!(locked, StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = login_from(&app, &manager, None, "manager", "manager123").await;
    assert_eq!(elsewhere, StatusCode::OK, "the real manager still logs in");
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_when_a_trusted_proxy_sends_it() {
    let app = spawn_app_with(|s| {
        s.client_addresses.trusted_proxies = "127.0.0.1/32".parse().expect("a block");
    })
    .await;
    // Through the proxy (127.0.0.1): the address it appended is the client.
    let proxy = client_from("127.0.0.1");
    guess_until_refused(&app, &proxy, Some("203.0.113.9, 198.51.100.1")).await;
    let locked = login_from(&app, &proxy, Some("198.51.100.1"), "manager", "manager123").await;
    assert_eq!(locked, StatusCode::TOO_MANY_REQUESTS);
    let other = login_from(&app, &proxy, Some("198.51.100.2"), "manager", "manager123").await;
    assert_eq!(other, StatusCode::OK, "another client behind the proxy");

    // From anyone else the header is the caller's own claim: a fresh one per guess
    // changes nothing.
    let direct = client_from("127.0.0.4");
    let mut statuses = Vec::new();
    while statuses.last() != Some(&StatusCode::TOO_MANY_REQUESTS) && statuses.len() < 25 {
        let forged = format!("192.0.2.{}", statuses.len());
        statuses.push(login_from(&app, &direct, Some(&forged), "manager", "wrong").await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let forged = login_from(&app, &direct, Some("192.0.2.200"), "manager", "manager123").await;
    assert_eq!(forged, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn no_login_answer_may_be_stored() {
    let app = spawn_app().await;
    for password in ["manager123", "wrong"] {
        let response = app.login("manager", password).await;
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{password}"
        );
    }
}
