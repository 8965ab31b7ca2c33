//! `POST /api/v1/checkout`: turns the session's cart into an order, once per
//! `Idempotency-Key`.

use crate::checkout::{self, CheckoutInput, CheckoutResponse};
use crate::error::{Error, Result};
use crate::startup::AppState;
use crate::validate::Validator;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use events::{Customer, ShippingAddress};
use platform::http::Json;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/checkout", post(checkout))
}

/// Header that makes a checkout safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Longest key (the column's length).
pub const MAX_KEY_CHARS: usize = 255;

/// The checkout body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    pub session_id: Option<String>,
    pub customer_info: Option<CustomerInfoRequest>,
}

/// Who orders and where it goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInfoRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub shipping_address: Option<AddressRequest>,
}

/// A shipping address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressRequest {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

fn is_phone(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value);
    (10..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

impl CheckoutRequest {
    fn validate(self) -> Result<CheckoutInput> {
        let mut v = Validator::new();
        v.required_text(
            "sessionId",
            self.session_id.as_deref(),
            (1, crate::carts::MAX_SESSION_ID_CHARS),
            "Session ID is required",
            "Session ID must be between 1 and 100 characters",
        );
        v.check(
            "customerInfo",
            self.customer_info.is_some(),
            "Customer information is required",
        );
        let info = self.customer_info.as_ref();
        let text =
            |f: fn(&CustomerInfoRequest) -> &Option<String>| info.and_then(|i| f(i).as_deref());
        if info.is_some() {
            v.required_text(
                "customerInfo.name",
                text(|i| &i.name),
                (1, 200),
                "Customer name is required",
                "Customer name must be between 1 and 200 characters",
            )
            .required_text(
                "customerInfo.email",
                text(|i| &i.email),
                (1, 100),
                "Email is required",
                "Email must not exceed 100 characters",
            )
            .required_text(
                "customerInfo.phone",
                text(|i| &i.phone),
                (1, 20),
                "Phone is required",
                "Phone must be 10-20 digits, optionally starting with +",
            );
            if let Some(email) = text(|i| &i.email) {
                v.check(
                    "customerInfo.email",
                    is_email(email),
                    "Invalid email format",
                );
            }
            if let Some(phone) = text(|i| &i.phone) {
                v.check(
                    "customerInfo.phone",
                    is_phone(phone),
                    "Phone must be 10-20 digits, optionally starting with +",
                );
            }
            let address = info.and_then(|i| i.shipping_address.as_ref());
            v.check(
                "customerInfo.shippingAddress",
                address.is_some(),
                "Shipping address is required",
            );
            if let Some(a) = address {
                let fields: [(&str, &Option<String>, usize, usize, &str); 5] = [
                    ("street", &a.street, 1, 200, "Street"),
                    ("city", &a.city, 1, 100, "City"),
                    ("state", &a.state, 2, 100, "State"),
                    ("postalCode", &a.postal_code, 1, 20, "Postal code"),
                    ("country", &a.country, 2, 100, "Country"),
                ];
                for (field, value, min, max, label) in fields {
                    v.required_text(
                        &format!("customerInfo.shippingAddress.{field}"),
                        value.as_deref(),
                        (min, max),
                        &format!("{label} is required"),
                        &format!("{label} must be between {min} and {max} characters"),
                    );
                }
            }
        }
        v.finish()?;
        let (Some(session_id), Some(info)) = (self.session_id, self.customer_info) else {
            return Err(Error::BadRequest("Invalid request body".into()));
        };
        let (Some(name), Some(email), Some(phone), Some(address)) =
            (info.name, info.email, info.phone, info.shipping_address)
        else {
            return Err(Error::BadRequest("Invalid request body".into()));
        };
        let (Some(street), Some(city), Some(state), Some(postal_code), Some(country)) = (
            address.street,
            address.city,
            address.state,
            address.postal_code,
            address.country,
        ) else {
            return Err(Error::BadRequest("Invalid request body".into()));
        };
        Ok(CheckoutInput {
            session_id,
            customer_info: Customer {
                name,
                email,
                phone,
                shipping_address: ShippingAddress {
                    street,
                    city,
                    state,
                    postal_code,
                    country,
                },
            },
        })
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    let value = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| Error::BadRequest(format!("Missing required header '{IDEMPOTENCY_KEY}'")))?;
    let key = value
        .to_str()
        .map_err(|_| {
            Error::BadRequest(format!(
                "Header '{IDEMPOTENCY_KEY}' must be printable ASCII"
            ))
        })?
        .trim();
    if key.is_empty() {
        return Err(Error::BadRequest(format!(
            "Header '{IDEMPOTENCY_KEY}' must not be blank"
        )));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(Error::BadRequest(format!(
            "Header '{IDEMPOTENCY_KEY}' must not exceed {MAX_KEY_CHARS} characters"
        )));
    }
    Ok(key.to_owned())
}

/// Places the order of the session's cart.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "checkout",
    params(("Idempotency-Key" = String, Header, description = "Makes retries safe; at most 255 characters")),
    request_body = CheckoutRequest,
    responses(
        (status = 201, body = CheckoutResponse, description = "Order submitted (a replay returns the stored response)"),
        (status = 400, description = "Invalid body, missing key, empty cart, or key reused with another body", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"),
        (status = 409, body = CheckoutResponse, description = "Insufficient inventory (status FAILED); or, as problem details, the key is in flight, or the cart changed since it was filled (type cart-changed: a price changed or a product is no longer sold; fieldErrors names each line, and the cart now shows today's prices)")))]
pub async fn checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CheckoutRequest>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let input = body.validate()?;
    let reply = checkout::checkout(&state, &key, &input).await?;
    let mut response = (reply.status, reply.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_an_at_sign_and_phones_ten_to_twenty_digits() {
        assert!(is_email("ada@example.com"));
        assert!(!is_email("not-an-email"));
        assert!(!is_email("@example.com"));
        assert!(is_phone("+14155551234"));
        assert!(is_phone("4155551234"));
        assert!(!is_phone("+1415"));
        assert!(!is_phone("415-555-1234"));
    }
}
