//! Files built into the binary and served over HTTP: the Swagger UI of every service
//! and the customer service's storefront and back office.
//!
//! Each [`StaticFile`] is hashed once at start-up; the hash is its strong `ETag` (a
//! revalidation that still matches is a bodyless 304) and its fingerprint, which pages
//! put into the URLs of their scripts and styles so those can be cached for a year: a
//! new build changes the fingerprint, hence the URL. Serving one costs a header
//! comparison and a reference-counted clone, nothing per byte.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// How long browsers may keep a file before asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Revalidate on every use (with `If-None-Match`): pages whose URL never changes.
    Revalidate,
    /// Keep for a year without asking: files whose URL carries their fingerprint or
    /// their version.
    Immutable,
}

impl Caching {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Revalidate => "no-cache",
            Self::Immutable => "public, max-age=31536000, immutable",
        })
    }
}

/// A file served from memory with its content type, `ETag` and cache policy.
#[derive(Debug, Clone)]
pub struct StaticFile {
    body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
    fingerprint: String,
    caching: Caching,
    policy: Option<HeaderValue>,
}

impl StaticFile {
    /// `body` served as `content_type` (a static MIME type, e.g. `text/css`).
    pub fn new(body: impl Into<Bytes>, content_type: &'static str, caching: Caching) -> Self {
        let body = body.into();
        let digest = Sha256::digest(&body);
        let fingerprint: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{fingerprint}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Self {
            body,
            content_type: HeaderValue::from_static(content_type),
            etag,
            fingerprint,
            caching,
            policy: None,
        }
    }

    /// Served with this `Content-Security-Policy` (a page's, see
    /// [`crate::headers::page_policy`]) instead of the one of answers that are not pages.
    #[must_use]
    pub fn with_policy(mut self, policy: HeaderValue) -> Self {
        self.policy = Some(policy);
        self
    }

    /// 16 hex digits of the content's SHA-256: changes whenever the content does.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The body, or a bodyless 304 when the request's `If-None-Match` names this
    /// version already.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let matches = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag.as_bytes() == self.etag.as_bytes());
        let headers = [
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, self.caching.header()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ];
        let mut response = if matches {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (
                headers,
                [(header::CONTENT_TYPE, self.content_type.clone())],
                self.body.clone(),
            )
                .into_response()
        };
        if let Some(policy) = &self.policy {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, policy.clone());
        }
        response
    }
}

/// A `GET` route answering with `file`.
pub fn get_file<S: Clone + Send + Sync + 'static>(
    file: StaticFile,
) -> axum::routing::MethodRouter<S> {
    axum::routing::get(move |headers: HeaderMap| {
        let file = file.clone();
        async move { file.respond(&headers) }
    })
}

/// Marks `response` as never to be stored by a browser or a proxy: for every answer
/// carrying personal data (order views, order lists, tokens). Use with
/// `axum::middleware::map_response`.
pub async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_if_none_match_is_answered_with_304_and_no_body() {
        let file = StaticFile::new("body{}", "text/css", Caching::Immutable);
        let mut headers = HeaderMap::new();
        let tag = format!("\"{}\"", file.fingerprint());
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&tag).expect("a header value"),
        );
        assert_eq!(file.respond(&headers).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(file.respond(&HeaderMap::new()).status(), StatusCode::OK);
    }

    #[test]
    fn a_different_content_has_a_different_fingerprint() {
        let a = StaticFile::new("a", "text/plain", Caching::Revalidate);
        let b = StaticFile::new("b", "text/plain", Caching::Revalidate);
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
