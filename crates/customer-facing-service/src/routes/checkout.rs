//! `POST /api/v1/checkout`: turns the session's cart into an order, once per
//! `Idempotency-Key`.

use crate::checkout::{self, CheckoutInput, CheckoutResponse};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::validate::Validator;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use events::{Customer, ShippingAddress};
use platform::http::Json;
use platform::idempotency::IdempotencyKey;
use platform::rules::{is_email, Pattern, Text};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/checkout", post(checkout))
}

/// Customer names.
const CUSTOMER_NAME: Text = Text::non_blank(1, 200);
/// E-mail addresses.
const EMAIL: Text = Text::non_blank(1, 100).with_pattern(Pattern {
    regex: platform::rules::EMAIL_REGEX,
    matches: is_email,
    message: "Invalid email format",
});
const PHONE_FORMAT: &str = "Phone must be 10-20 digits, optionally starting with +";
/// Phone numbers: 10 to 20 digits, optionally after a `+`.
const PHONE: Text = Text::non_blank(1, 20).with_pattern(Pattern {
    regex: "^\\+?[0-9]{10,20}$",
    matches: is_phone,
    message: PHONE_FORMAT,
});
const STREET: Text = Text::non_blank(1, 200);
const CITY: Text = Text::non_blank(1, 100);
const STATE: Text = Text::non_blank(2, 100);
const POSTAL_CODE: Text = Text::non_blank(1, 20);
const COUNTRY: Text = Text::non_blank(2, 100);

/// The checkout body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    #[schema(required = true, schema_with = schema::session_id)]
    pub session_id: Option<String>,
    #[schema(required = true, nullable = false)]
    pub customer_info: Option<CustomerInfoRequest>,
}

/// Who orders and where it goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInfoRequest {
    #[schema(required = true, schema_with = schema::name)]
    pub name: Option<String>,
    #[schema(required = true, schema_with = schema::email)]
    pub email: Option<String>,
    #[schema(required = true, schema_with = schema::phone)]
    pub phone: Option<String>,
    #[schema(required = true, nullable = false)]
    pub shipping_address: Option<AddressRequest>,
}

/// A shipping address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressRequest {
    #[schema(required = true, schema_with = schema::street)]
    pub street: Option<String>,
    #[schema(required = true, schema_with = schema::city)]
    pub city: Option<String>,
    #[schema(required = true, schema_with = schema::state)]
    pub state: Option<String>,
    #[schema(required = true, schema_with = schema::postal_code)]
    pub postal_code: Option<String>,
    #[schema(required = true, schema_with = schema::country)]
    pub country: Option<String>,
}

/// Schemas of the checkout fields, from the rules the validation uses.
mod schema {
    use utoipa::openapi::Object;

    pub fn session_id() -> Object {
        crate::carts::SESSION_ID.schema()
    }
    pub fn name() -> Object {
        super::CUSTOMER_NAME.schema()
    }
    pub fn email() -> Object {
        super::EMAIL.schema()
    }
    pub fn phone() -> Object {
        super::PHONE.schema()
    }
    pub fn street() -> Object {
        super::STREET.schema()
    }
    pub fn city() -> Object {
        super::CITY.schema()
    }
    pub fn state() -> Object {
        super::STATE.schema()
    }
    pub fn postal_code() -> Object {
        super::POSTAL_CODE.schema()
    }
    pub fn country() -> Object {
        super::COUNTRY.schema()
    }
}

fn is_phone(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value);
    (10..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

impl CheckoutRequest {
    /// Every field checked (one message per field), then the request as the checkout
    /// takes it.
    fn validate(self) -> Result<CheckoutInput> {
        let mut v = Validator::new();
        v.required_text(
            "sessionId",
            self.session_id.as_deref(),
            &crate::carts::SESSION_ID,
            "Session ID is required",
            "Session ID must be between 1 and 100 characters",
        );
        v.check(
            "customerInfo",
            self.customer_info.is_some(),
            "Customer information is required",
        );
        if let Some(info) = self.customer_info.as_ref() {
            info.check(&mut v);
        }
        v.finish()?;
        self.into_input()
            .ok_or_else(|| Error::BadRequest("Invalid request body".into()))
    }

    /// The request with every required field present; `None` when one is missing
    /// (which [`validate`](Self::validate) has reported by then).
    fn into_input(self) -> Option<CheckoutInput> {
        let info = self.customer_info?;
        let address = info.shipping_address?;
        Some(CheckoutInput {
            session_id: self.session_id?,
            customer_info: Customer {
                name: info.name?,
                email: info.email?,
                phone: info.phone?,
                shipping_address: ShippingAddress {
                    street: address.street?,
                    city: address.city?,
                    state: address.state?,
                    postal_code: address.postal_code?,
                    country: address.country?,
                },
            },
        })
    }
}

impl CustomerInfoRequest {
    /// Checks the customer's fields and address into `v`.
    fn check(&self, v: &mut Validator) {
        v.required_text(
            "customerInfo.name",
            self.name.as_deref(),
            &CUSTOMER_NAME,
            "Customer name is required",
            "Customer name must be between 1 and 200 characters",
        )
        .required_text(
            "customerInfo.email",
            self.email.as_deref(),
            &EMAIL,
            "Email is required",
            "Email must not exceed 100 characters",
        )
        .required_text(
            "customerInfo.phone",
            self.phone.as_deref(),
            &PHONE,
            "Phone is required",
            PHONE_FORMAT,
        );
        let address = self.shipping_address.as_ref();
        v.check(
            "customerInfo.shippingAddress",
            address.is_some(),
            "Shipping address is required",
        );
        if let Some(address) = address {
            address.check(v);
        }
    }
}

impl AddressRequest {
    /// Checks the address's fields into `v`.
    fn check(&self, v: &mut Validator) {
        let fields: [(&str, &Option<String>, &Text, &str); 5] = [
            ("street", &self.street, &STREET, "Street"),
            ("city", &self.city, &CITY, "City"),
            ("state", &self.state, &STATE, "State"),
            ("postalCode", &self.postal_code, &POSTAL_CODE, "Postal code"),
            ("country", &self.country, &COUNTRY, "Country"),
        ];
        for (field, value, rule, label) in fields {
            v.required_text(
                &format!("customerInfo.shippingAddress.{field}"),
                value.as_deref(),
                rule,
                &format!("{label} is required"),
                &format!(
                    "{label} must be between {} and {} characters",
                    rule.min, rule.max
                ),
            );
        }
    }
}

/// Places the order of the session's cart.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "checkout", operation_id = "checkout",
    params(("Idempotency-Key" = String, Header, description = "Makes retries safe; at most 255 characters")),
    request_body = CheckoutRequest,
    responses(
        (status = 201, body = CheckoutResponse, description = "Order submitted (a replay returns the stored response)"),
        (status = 400, description = "Invalid body, or a missing or invalid key", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Insufficient inventory (a CheckoutResponse with status FAILED); or, as problem details: the cart is empty, the key is in flight or was used with another body, or the cart changed since it was filled (type cart-changed: a price changed or a product is no longer sold; fieldErrors names each line, and the cart now shows today's prices)",
            content((CheckoutResponse = "application/json"), (platform::Problem = "application/problem+json")))))]
pub async fn checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CheckoutRequest>,
) -> Result<Response> {
    let key =
        IdempotencyKey::from_headers(&headers).map_err(|e| Error::BadRequest(e.to_string()))?;
    let input = body.validate()?;
    let reply = platform::otel::in_span(
        "checkout transaction",
        platform::otel::SpanKind::Internal,
        checkout::checkout(&state, &key, &input),
    )
    .await?;
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
