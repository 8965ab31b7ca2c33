//! The security headers every answer carries, and the Content-Security-Policy of the
//! pages (the storefront, the back office, the Swagger UI).
//!
//! Every answer gets `Referrer-Policy: no-referrer` (no URL, with its order number or
//! query, leaks to another site), `X-Content-Type-Options: nosniff`, `X-Frame-Options:
//! DENY`, and `Strict-Transport-Security` when `HSTS_MAX_AGE_SECS` is set. An answer
//! without its own policy (JSON, problem details) gets `default-src 'none';
//! frame-ancestors 'none'`: it loads nothing and is framed nowhere. Pages set
//! [`page_policy`]: everything from this origin only, no inline script or style, no
//! plugins, no `<base>`, never framed.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of answers that are not pages.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of a page served by this origin: scripts, styles, fonts and fetches from
/// this origin only (plus `connect_to`, origins the page's scripts call), images from
/// this origin or `data:` URLs (the icons of the stylesheets), nothing inline.
pub fn page_policy(connect_to: &[String]) -> HeaderValue {
    let mut connect = String::from("'self'");
    for origin in connect_to {
        connect.push(' ');
        connect.push_str(origin);
    }
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src {connect}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    // `connect_to` holds origins from `origin_of`; anything else falls back to 'self'.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        )
    })
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL, as a policy names it;
/// `None` for anything else (an empty or relative URL means this origin).
pub fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin
        .is_tuple()
        .then(|| origin.ascii_serialization())
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
}

/// What [`secure`] adds besides the fixed headers.
#[derive(Clone, Debug, Default)]
pub struct SecurityHeaders {
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// `hsts_max_age_secs`: the `max-age` of `Strict-Transport-Security`; none is sent
    /// when `None`.
    pub fn new(hsts_max_age_secs: Option<u64>) -> Self {
        Self {
            hsts: hsts_max_age_secs
                .and_then(|age| HeaderValue::from_str(&format!("max-age={age}")).ok()),
        }
    }
}

/// The middleware; install with
/// `axum::middleware::from_fn_with_state(SecurityHeaders::new(..), platform::headers::secure)`.
pub async fn secure(
    State(settings): State<SecurityHeaders>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| HeaderValue::from_static(API_POLICY));
    if let Some(hsts) = &settings.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port_and_nothing_else_passes() {
        assert_eq!(
            origin_of("http://127.0.0.1:8081/").as_deref(),
            Some("http://127.0.0.1:8081")
        );
        assert_eq!(
            origin_of("https://orders.example.com/base/path?x=1").as_deref(),
            Some("https://orders.example.com")
        );
        assert_eq!(origin_of(""), None);
        assert_eq!(origin_of("/relative"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
    }

    #[test]
    fn a_page_policy_names_the_origins_it_may_call() {
        let policy = page_policy(&["http://127.0.0.1:8081".into()]);
        let policy = policy.to_str().unwrap_or_default();
        assert!(policy.contains("connect-src 'self' http://127.0.0.1:8081;"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe"));
    }
}
