//! Cross-origin access for browser pages served by another service (the storefront and
//! back office on the customer service call the order service's API): `GET`, `POST`
//! and their preflight, from an explicit list of origins only. A request from any other
//! origin gets no CORS headers, so the browser keeps its answer from the page; requests
//! without `Origin` (curl, services) are untouched.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Request headers a page may send: JSON bodies, the manager's token, the customer's
/// e-mail for an order lookup, correlation and idempotency ids.
const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, X-Customer-Email, X-Correlation-ID, Idempotency-Key";
/// How long a browser may reuse a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins (`scheme://host[:port]`) allowed to call this service from a browser.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Arc<Vec<HeaderValue>>);

impl AllowedOrigins {
    /// From settings such as `http://localhost:8080`; a trailing `/` is ignored, and an
    /// origin that cannot be a header value is an error naming it.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(origins: I) -> anyhow::Result<Self> {
        let parsed = origins
            .into_iter()
            .map(|o| o.as_ref().trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(&o).map_err(|_| anyhow::anyhow!("invalid CORS origin '{o}'"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self(Arc::new(parsed)))
    }

    fn allowed(&self, origin: &HeaderValue) -> bool {
        self.0.iter().any(|o| o.as_bytes() == origin.as_bytes())
    }
}

/// Middleware: answers the preflight of an allowed origin itself (204) and adds
/// `Access-Control-Allow-Origin` to the answers it lets through.
pub async fn cors(State(origins): State<AllowedOrigins>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|o| origins.allowed(o))
        .cloned();
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS),
                (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE),
            ],
        )
            .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Correlation-ID"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
