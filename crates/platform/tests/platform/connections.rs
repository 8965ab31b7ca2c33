//! The server's connection limits, seen from a raw TCP client: what a slow or idle
//! client can hold, and how many connections are served at once.

use crate::support::{spawn_with_settings, TestApp};
use axum::routing::get;
use axum::Router;
use platform::config::HttpServerSettings;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn api() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

async fn app_with(settings: HttpServerSettings) -> TestApp {
    spawn_with_settings(api(), settings).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";

/// Reads one whole answer to `GET /hello` (its body is `hello`) and returns its head.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.ends_with(b"hello") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the connection closed before the answer was complete"
        );
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(received).unwrap()
}

/// Whether the server closes the connection within `within`: `Some(time taken)` when it
/// does, `None` when it is still open then. Anything the server sends is read and ignored.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_until_closed)
        .await
        .ok()
        .map(|()| started.elapsed())
}

#[tokio::test]
async fn a_connection_that_sends_half_its_headers_is_closed_after_the_header_read_timeout() {
    let app = app_with(HttpServerSettings {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 60,
        ..HttpServerSettings::default()
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    let took = closed.expect("a half-sent request head still holds its connection after 5 s");
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn a_client_trickling_its_headers_byte_by_byte_cannot_stretch_the_header_read_timeout() {
    let app = app_with(HttpServerSettings {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 60,
        ..HttpServerSettings::default()
    })
    .await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    // A byte every 200 ms: the whole head would take 10 s.
    let trickle = tokio::spawn(async move {
        for byte in b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
        {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(4), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a trickling client still holds its connection after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = app_with(HttpServerSettings {
        header_read_timeout_secs: 30,
        idle_timeout_secs: 1,
        ..HttpServerSettings::default()
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(REQUEST).await.unwrap();
    let head = read_answer(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Kept alive: a second request on the same connection is served.
    stream.write_all(REQUEST).await.unwrap();
    read_answer(&mut stream).await;
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    let took = closed.expect("an idle keep-alive connection is still open after 5 s");
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = app_with(HttpServerSettings {
        max_connections: 1,
        ..HttpServerSettings::default()
    })
    .await;
    let mut first = connect(&app).await;
    first.write_all(REQUEST).await.unwrap();
    read_answer(&mut first).await;

    // The kernel completes the handshake; the server does not take the connection while
    // the first one is open.
    let mut second = connect(&app).await;
    second.write_all(REQUEST).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(1500), read_answer(&mut second)).await;
    assert!(
        early.is_err(),
        "a connection beyond the cap was served while the first was open"
    );

    drop(first);
    let head = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut second))
        .await
        .expect("the waiting connection is served once a slot frees");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_closes_idle_connections() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = std::sync::Arc::new(tokio::sync::Mutex::new(Some(released)));
    let api = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(move || {
                let released = released.clone();
                async move {
                    if let Some(released) = released.lock().await.take() {
                        let _ = released.await;
                    }
                    "hello"
                }
            }),
        );
    let app = spawn_with_settings(api, HttpServerSettings::default()).await;
    let mut idle = connect(&app).await;
    idle.write_all(REQUEST).await.unwrap();
    read_answer(&mut idle).await;
    let mut busy = connect(&app).await;
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.shutdown.cancel();
    assert!(
        closed_within(&mut idle, Duration::from_secs(2))
            .await
            .is_some(),
        "an idle connection stays open after shutdown"
    );
    release.send(()).unwrap();
    let head = tokio::time::timeout(Duration::from_secs(2), read_answer(&mut busy))
        .await
        .expect("the request in flight is answered during shutdown");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(closed_within(&mut busy, Duration::from_secs(2))
        .await
        .is_some());
}
