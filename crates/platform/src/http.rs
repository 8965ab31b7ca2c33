//! HTTP plumbing shared by every service.
//!
//! - [`observe`]: the middleware that takes or makes the `X-Correlation-ID`, continues
//!   the W3C trace, echoes the id, logs inside a span carrying both, and records
//!   `http_server_requests_seconds` labelled by route template.
//! - [`Json`] and [`Query`]: extractors whose rejections are problem details.
//! - [`not_found`] and [`method_not_allowed`]: fallbacks that answer with problem details.
//! - [`bind`] and [`serve`]: listening with readable errors, connection limits, the
//!   security headers, and graceful shutdown.

use crate::config::HttpServerSettings;
use crate::context::{self, RequestContext, TraceContext, CORRELATION_HEADER, TRACEPARENT_HEADER};
use crate::headers::SecurityHeaders;
use crate::problem::{FieldErrors, Problem};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::HistogramVec;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// `http_server_requests_seconds`, shared by the middleware of one service.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: HistogramVec,
}

impl HttpMetrics {
    pub fn new(metrics: &crate::metrics::Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            requests: metrics.histogram_vec(
                "http_server_requests_seconds",
                "HTTP server request duration by route template.",
                &["method", "uri", "status", "outcome"],
            )?,
        })
    }
}

/// The method as a metric label: the standard ones by name, any other `OTHER`, since
/// hyper accepts any token as a method and each new label value is a series kept forever.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "INFORMATIONAL",
        200..=299 => "SUCCESS",
        300..=399 => "REDIRECTION",
        400..=499 => "CLIENT_ERROR",
        _ => "SERVER_ERROR",
    }
}

/// The observability middleware; install with
/// `axum::middleware::from_fn_with_state(http_metrics, platform::http::observe)`.
pub async fn observe(
    axum::extract::State(metrics): axum::extract::State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let mut ctx = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        RequestContext {
            correlation_id: context::correlation_id_or_new(header(CORRELATION_HEADER)),
            trace: TraceContext::from_traceparent(header(TRACEPARENT_HEADER)),
            path: Some(request.uri().path().to_owned()),
        }
    };
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    // Probes and scrapes are not traced: every few seconds a trace of its own is noise.
    let mut exported = if request.uri().path().starts_with("/actuator/") {
        crate::otel::Span::inert()
    } else {
        crate::otel::start(
            format!(
                "{} {}",
                method,
                route.as_deref().unwrap_or(request.uri().path())
            ),
            crate::otel::SpanKind::Server,
            &mut ctx.trace,
        )
    };
    let span = tracing::info_span!(
        "http",
        correlationId = %ctx.correlation_id,
        traceId = %ctx.trace.trace_id,
        spanId = %ctx.trace.span_id,
        method = %method,
        path = %request.uri().path(),
    );
    let correlation_id = ctx.correlation_id.clone();
    let mut response = if has_encoded_nul(request.uri()) {
        // No text column can hold a NUL: refuse it here rather than fail in the database.
        context::scope(ctx, async {
            Problem::bad_request("The URL must not contain NUL (%00) characters").into_response()
        })
        .await
    } else {
        context::scope(ctx, next.run(request).instrument(span.clone())).await
    };
    let status = response.status();
    exported.http_status(&crate::otel::SpanKind::Server, status.as_u16());
    drop(exported);
    let uri = route.unwrap_or_else(|| {
        if status == StatusCode::NOT_FOUND {
            "NOT_FOUND"
        } else {
            "UNKNOWN"
        }
        .into()
    });
    let elapsed = started.elapsed();
    metrics
        .requests
        .with_label_values(&[
            method_label(&method),
            &uri,
            status.as_str(),
            outcome(status),
        ])
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    if !uri.starts_with("/actuator") {
        span.in_scope(|| {
            tracing::info!(
                status = status.as_u16(),
                uri = %uri,
                durationMs = elapsed.as_secs_f64() * 1000.0,
                "request completed"
            );
        });
    }
    response
}

/// Fallback for routes that do not exist.
pub async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "resource-not-found",
        "Resource Not Found",
        "No resource exists at this path",
    )
}

/// Fallback for a known route called with a method it does not support.
pub async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}

/// A JSON request body; malformed JSON, wrong types, a missing body, a wrong content
/// type and an oversized body are 4xx problem details, never 500.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_json = mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !is_json {
            return Err(Problem::unsupported_media_type(format!(
                "Content-Type '{content_type}' is not supported; use application/json"
            )));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::payload_too_large(format!(
                        "Request body exceeds {MAX_BODY_BYTES} bytes"
                    ))
                } else {
                    Problem::bad_request("Request body could not be read")
                }
            })?;
        from_json_bytes(&bytes).map(Json)
    }
}

/// Parses a JSON body as [`Json`] does, for callers that hold the bytes themselves.
///
/// NUL is refused in the strings `T` reads (PostgreSQL cannot store it), not in the
/// properties it ignores (see the private `json_body` module).
pub fn from_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("Required request body is missing"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| Problem::bad_request("Malformed JSON request body"))?;
    serde_path_to_error::deserialize::<_, T>(crate::json_body::Guarded(&value)).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        if path == "." || path.is_empty() {
            Problem::bad_request(format!("Request body is invalid: {message}"))
        } else {
            Problem::validation(FieldErrors::from([(path, message)]))
        }
    })
}

/// Whether a URI's path or query carries an encoded NUL (`%00`).
fn has_encoded_nul(uri: &axum::http::Uri) -> bool {
    let has = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    has(uri.path()) || uri.query().is_some_and(has)
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON answer serialized ahead of time (a cached one), sent as it is.
pub struct JsonBytes(pub axum::body::Bytes);

impl IntoResponse for JsonBytes {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// Query parameters whose rejections are 400 problem details.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                Problem::bad_request(format!(
                    "Invalid value for parameter '{field}': {}",
                    e.into_inner()
                ))
            })
    }
}

/// Binds `addr`; a port in use is one readable line.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!("cannot listen on {addr}: the port is already in use")
        }
        _ => anyhow::anyhow!("cannot listen on {addr}: {e}"),
    })
}

/// Serves `router` until `shutdown` is cancelled, then drains in-flight requests; every
/// answer gets the security headers ([`crate::headers`]), every connection the limits of
/// `settings` ([`crate::connections`]).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    settings: HttpServerSettings,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        SecurityHeaders::new(settings.hsts_max_age_secs),
        crate::headers::secure,
    ));
    crate::connections::serve(listener, router, shutdown, settings.limits()).await
}
