use axum::routing::get;
use axum::Router;
use platform::cors::{cors, AllowedOrigins};
use tokio_util::sync::CancellationToken;

const SHOP: &str = "http://127.0.0.1:8080";

struct App {
    address: String,
    client: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

/// A router wrapped as the order service wraps its whole router: CORS outermost, so
/// it answers preflights before routing (which knows no OPTIONS).
async fn spawn_app() -> App {
    let origins = AllowedOrigins::new(["http://localhost:8080", "http://127.0.0.1:8080/"]).unwrap();
    let router = Router::new()
        .route("/orders/{n}", get(|| async { "an order" }))
        .layer(axum::middleware::from_fn_with_state(origins, cors));
    let listener = platform::http::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(platform::http::serve(
        listener,
        router,
        stop.clone(),
        Default::default(),
    ));
    App {
        address,
        client: reqwest::Client::new(),
        _stop: stop.drop_guard(),
    }
}

#[tokio::test]
async fn an_allowed_origins_preflight_and_request_get_cors_headers() {
    let app = spawn_app().await;
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/orders/1", app.address),
        )
        .header("Origin", SHOP)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-customer-email")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], SHOP);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-customer-email") && allowed.contains("authorization"));

    let read = app
        .client
        .get(format!("{}/orders/1", app.address))
        .header("Origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], SHOP);
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_app().await;
    let read = app
        .client
        .get(format!("{}/orders/1", app.address))
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert!(read.headers().get("access-control-allow-origin").is_none());
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/orders/1", app.address),
        )
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
