//! RFC 7807 problem details: the only error body a client of ours ever sees.
//!
//! The shape is the original system's (`type`, `title`, `status`, `detail`, `instance`,
//! `correlationId`, and `fieldErrors` on validation failures). `instance` and
//! `correlationId` are filled from the current request [`context`](crate::context).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

const TYPE_BASE: &str = "https://api.ecommerce.com/problems/";

/// Field path (dotted, e.g. `customerInfo.email`) to one message.
pub type FieldErrors = BTreeMap<String, String>;

/// An RFC 7807 problem details body (`fieldErrors` only on validation failures).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ProblemDetails)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "https://api.ecommerce.com/problems/resource-not-found")]
    pub kind: String,
    #[schema(example = "Resource Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "Product not found with id: 3b7e4c2a-0d9f-4e61-8c55-1f2a3b4c5d6e")]
    pub detail: String,
    #[schema(example = "/api/v1/products/3b7e4c2a-0d9f-4e61-8c55-1f2a3b4c5d6e")]
    pub instance: Option<String>,
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_errors: Option<FieldErrors>,
}

impl Problem {
    /// A problem of type `<base>/<slug>`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            correlation_id: None,
            field_errors: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad Request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource-not-found",
            "Resource Not Found",
            detail,
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// Body validation failed: `detail` is "Invalid request body", the fields say why.
    pub fn validation(field_errors: FieldErrors) -> Self {
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "validation-failed",
            "Validation Failed",
            "Invalid request body",
        );
        problem.field_errors = Some(field_errors);
        problem
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
            detail,
        )
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload Too Large",
            detail,
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            "The request method is not supported for this resource",
        )
    }

    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service Unavailable",
            detail,
        )
    }

    /// The body for anything we did not expect: the cause goes to the log, never here.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-server-error",
            "Internal Server Error",
            "An unexpected error occurred. Please try again later.",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        if let Some(ctx) = crate::context::current() {
            self.instance = self.instance.or(ctx.path);
            self.correlation_id = self.correlation_id.or(Some(ctx.correlation_id));
        }
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serializes_with_the_original_field_names_and_explicit_nulls() {
        let json = serde_json::to_value(Problem::not_found("Product not found with id: x"))
            .unwrap_or_default();
        assert_eq!(
            json["type"],
            "https://api.ecommerce.com/problems/resource-not-found"
        );
        assert_eq!(json["title"], "Resource Not Found");
        assert_eq!(json["status"], 404);
        assert!(json.get("instance").is_some_and(|v| v.is_null()));
        assert!(json.get("correlationId").is_some_and(|v| v.is_null()));
        assert!(json.get("fieldErrors").is_none());
    }

    #[tokio::test]
    async fn a_problem_takes_instance_and_correlation_id_from_the_request() {
        let mut ctx = crate::context::RequestContext::new_root();
        ctx.correlation_id = "abc".into();
        ctx.path = Some("/api/v1/products/1".into());
        let response =
            crate::context::scope(ctx, async { Problem::bad_request("nope").into_response() })
                .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(json["instance"], "/api/v1/products/1");
        assert_eq!(json["correlationId"], "abc");
    }
}
