use crate::support::{log_lines, spawn};
use axum::routing::{get, post};
use axum::Router;
use platform::auth::{HasJwtKeys, JwtKeys, Manager};
use platform::config::{JwtSettings, Secret};
use platform::http::Json;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    quantity: u32,
    customer: Customer,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Customer {
    email: String,
}

async fn logging_handler() -> &'static str {
    tracing::info!(step = "one", "handling");
    tracing::warn!(step = "two", "still handling");
    "ok"
}

async fn order_handler(Json(_order): Json<Order>) -> &'static str {
    "accepted"
}

fn api() -> Router {
    Router::new()
        .route("/things/{id}", get(logging_handler))
        .route("/orders", post(order_handler))
}

#[tokio::test]
async fn a_correlation_id_is_echoed_and_on_every_log_line_of_its_request() {
    let app = spawn(api(), vec![]).await;
    let id = format!("abc-{}", uuid::Uuid::new_v4());
    let response = app
        .client
        .get(format!("{}/things/1", app.address))
        .header("X-Correlation-ID", &id)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-correlation-id"], id.as_str());
    let lines: Vec<_> = log_lines()
        .into_iter()
        .filter(|l| l["correlationId"] == id.as_str())
        .collect();
    let messages: Vec<_> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(messages.contains(&"handling".to_owned()), "{messages:?}");
    assert!(messages.contains(&"still handling".to_owned()));
    assert!(messages.contains(&"request completed".to_owned()));
    for line in &lines {
        assert_eq!(line["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["spanId"].as_str().unwrap().len(), 16);
        assert_eq!(line["service"], "platform-test");
        assert!(
            line["timestamp"].is_string()
                && line["level"].is_string()
                && line["target"].is_string()
        );
    }
}

#[tokio::test]
async fn a_request_without_a_correlation_id_gets_a_fresh_one() {
    let app = spawn(api(), vec![]).await;
    let response = app
        .client
        .get(format!("{}/things/1", app.address))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-correlation-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

async fn post_body(
    app: &crate::support::TestApp,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut request = app
        .client
        .post(format!("{}/orders", app.address))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request
        .header("X-Correlation-ID", "bad-input")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn bad_request_bodies_are_problem_details_never_500() {
    let app = spawn(api(), vec![]).await;
    let json = Some("application/json");
    let (status, body) = post_body(&app, json, b"{not json".to_vec()).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (400, "Malformed JSON request body")
    );
    assert_eq!(body["instance"], "/orders");
    assert_eq!(body["correlationId"], "bad-input");

    let (status, body) = post_body(
        &app,
        json,
        br#"{"quantity":"two","customer":{"email":"a@b"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["title"], "Validation Failed");
    assert!(body["fieldErrors"]["quantity"]
        .as_str()
        .unwrap()
        .contains("invalid type"));

    let (status, body) = post_body(
        &app,
        json,
        br#"{"quantity":1,"customer":{"email":7}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["fieldErrors"]["customer.email"].is_string(), "{body}");

    let (status, body) = post_body(
        &app,
        json,
        br#"{"quantity":-1,"customer":{"email":"a"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = post_body(&app, json, br#"{"quantity":1}"#.to_vec()).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = post_body(&app, json, Vec::new()).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (400, "Required request body is missing")
    );

    let (status, _) = post_body(&app, Some("text/plain"), b"{}".to_vec()).await;
    assert_eq!(status, 415);
    let (status, _) = post_body(&app, None, b"{}".to_vec()).await;
    assert_eq!(status, 415);

    let huge = format!(
        r#"{{"quantity":1,"customer":{{"email":"{}"}}}}"#,
        "x".repeat(platform::http::MAX_BODY_BYTES + 1)
    );
    let (status, _) = post_body(&app, json, huge.into_bytes()).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_details() {
    let app = spawn(api(), vec![]).await;
    let response = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://api.ecommerce.com/problems/resource-not-found"
    );
    let response = app
        .client
        .delete(format!("{}/orders", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn requests_are_measured_by_route_template() {
    let app = spawn(api(), vec![]).await;
    for id in ["1", "2", "3"] {
        app.client
            .get(format!("{}/things/{id}", app.address))
            .send()
            .await
            .unwrap();
    }
    let text = app
        .client
        .get(format!("{}/actuator/prometheus", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_server_requests_seconds_count{")
                && l.contains("uri=\"/things/{id}\"")
        })
        .unwrap_or_else(|| panic!("no series for the template in:\n{text}"));
    assert!(
        line.contains("method=\"GET\"")
            && line.contains("status=\"200\"")
            && line.contains("outcome=\"SUCCESS\"")
    );
    assert!(line.ends_with(" 3"), "{line}");
    assert!(text.contains("process_resident_memory_bytes{"));
}

#[derive(Clone)]
struct AuthState(JwtKeys);
impl HasJwtKeys for AuthState {
    fn jwt_keys(&self) -> &JwtKeys {
        &self.0
    }
}

async fn manager_only(Manager(_): Manager) -> &'static str {
    "secret"
}

#[tokio::test]
async fn manager_routes_want_a_valid_manager_token() {
    let keys = JwtKeys::from_settings(
        &JwtSettings {
            secret: Secret::new(platform::auth::DEMO_SECRET),
            previous_secrets: vec![],
            issuer: "ecommerce-platform-dev".into(),
            expiration_minutes: 15,
        },
        true,
    )
    .unwrap();
    let state = AuthState(keys.clone());
    let api = Router::new()
        .route("/admin", get(manager_only))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            platform::auth::reject_invalid_bearer::<AuthState>,
        ))
        .with_state(state);
    let app = spawn(api, vec![]).await;
    let url = format!("{}/admin", app.address);
    let status = |token: Option<String>| {
        let mut request = app.client.get(&url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { request.send().await.unwrap() }
    };
    let none = status(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let bad = status(Some("garbage".into())).await;
    assert_eq!(bad.status(), 401);
    assert!(bad.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        status(Some(keys.sign("guest", &["GUEST"]))).await.status(),
        403
    );
    assert_eq!(
        status(Some(keys.sign("manager", &["MANAGER"])))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn nul_characters_in_bodies_and_urls_are_refused_before_they_reach_the_database() {
    let app = spawn(api(), vec![]).await;
    let (status, body) = post_body(
        &app,
        Some("application/json"),
        br#"{"quantity":1,"customer":{"email":"a\u0000b"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header("content-type", "application/json")
        .body(br#"{"quantity":1,"customer":{"email":"a\\u0000b"}}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "an escaped backslash before u0000 is plain text"
    );
    let response = app
        .client
        .get(format!("{}/things/a%00b", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

/// The `http_server_requests_seconds_count` lines of the app's metrics.
async fn request_series(app: &crate::support::TestApp) -> Vec<String> {
    app.client
        .get(format!("{}/actuator/prometheus", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("http_server_requests_seconds_count{"))
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect()
}

#[tokio::test]
async fn invented_methods_share_one_metric_label_and_add_no_series() {
    let app = spawn(api(), vec![]).await;
    let invented = |name: &str| reqwest::Method::from_bytes(name.as_bytes()).unwrap();
    let send = |method: reqwest::Method| {
        let request = app
            .client
            .request(method, format!("{}/things/1", app.address));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(send(invented("FROBNICATE")).await, 405);
    // The scrape itself is a series too: take it once before counting.
    request_series(&app).await;
    let before = request_series(&app).await;
    for name in ["WIBBLE", "XYZZY", "PLUGH1"] {
        assert_eq!(send(invented(name)).await, 405);
    }
    let after = request_series(&app).await;
    assert_eq!(before, after, "invented methods added series");
    assert!(
        after.iter().any(|l| l.contains("method=\"OTHER\"")),
        "{after:#?}"
    );
    assert!(
        !after
            .iter()
            .any(|l| l.contains("FROBNICATE") || l.contains("WIBBLE")),
        "{after:#?}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_hsts_only_when_set() {
    let app = spawn(api(), vec![]).await;
    for path in ["/things/1", "/nowhere", "/actuator/health"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert!(headers.get("strict-transport-security").is_none(), "{path}");
    }
    let app = crate::support::spawn_with_settings(
        api().merge(platform::swagger_ui::router()),
        platform::config::HttpServerSettings {
            hsts_max_age_secs: Some(600),
            ..Default::default()
        },
    )
    .await;
    let response = app
        .client
        .get(format!("{}/swagger-ui.html", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=600"
    );
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
}
