//! Passing a GET on to another service of the platform and its answer back as it is:
//! the status, the content type, `Retry-After` and the body, byte for byte. The caller's headers
//! that decide what the other service shows (its token, say) go with it, and so do the
//! correlation id and trace.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Another service's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    /// The other service's `Retry-After` (a 429 or 503 of its own), passed on with it.
    pub retry_after: Option<HeaderValue>,
    pub body: Bytes,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        if let Some(retry_after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}

/// Sends GETs to one other service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    base: reqwest::Url,
}

impl Forwarder {
    /// `base` is the other service's base URL; a call waits `timeout` at most.
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base =
            reqwest::Url::parse(base).map_err(|e| anyhow::anyhow!("'{base}' is not a URL: {e}"))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            anyhow::bail!("'{base}' is not an http(s) base URL");
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self { client, base })
    }

    /// GET `segments` (each escaped as one path segment) under the base URL, with the
    /// `forwarded` headers of `headers` and the `extra` ones. An error is a transport
    /// failure or timeout, described for the log.
    pub async fn get(
        &self,
        segments: &[&str],
        headers: &HeaderMap,
        forwarded: &[&str],
        extra: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| "base URL without a path".to_owned())?
            .pop_if_empty()
            .extend(segments);
        let mut request = crate::context::propagate(self.client.get(url));
        for name in forwarded {
            if let Some(value) = headers.get(*name) {
                request = request.header(*name, value);
            }
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = StatusCode::from_u16(response.status().as_u16()).map_err(|e| e.to_string())?;
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            content_type,
            retry_after,
            body,
        })
    }
}
