//! Orders: the public lookup by number (personal data masked unless the caller is a
//! manager or proves the order is theirs), and the manager's list, cancel and fulfil.
//! Order numbers count up per day, so anonymous lookups are limited per client address
//! and so are `X-Customer-Email` claims that turn out wrong; no answer may be stored.

use crate::db;
use crate::db::orders::{ItemRow, OrderFilter, OrderRow};
use crate::domain::OrderStatus;
use crate::error::Error;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use chrono::{DateTime, NaiveDateTime};
use platform::auth::{Manager, Principal};
use platform::http::{Json, Query};
use platform::rules::{count_from, Int, Text, TextViolation};
use platform::FieldErrors;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The routes of this module.
pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .route("/api/v1/orders/{orderNumber}", get(get_order))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            platform::auth::reject_invalid_bearer::<AppState>,
        ));
    Router::new()
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{orderNumber}/cancel", post(cancel_order))
        .route("/api/v1/orders/{orderNumber}/fulfill", post(fulfill_order))
        .merge(public)
        // Every answer here may carry customers' details: none may be stored.
        .layer(axum::middleware::map_response(platform::web::no_store))
        .with_state(state)
}

use events::order_view::claim_matches;
pub use events::order_view::{
    CustomerInfo, Order, OrderItem, ShippingAddress, CUSTOMER_EMAIL_HEADER, RECORDED_ONLY_HEADER,
};

/// A page of orders; `totalElements` is exact.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub content: Vec<Order>,
    pub total_elements: i64,
    pub total_pages: i64,
    pub size: i64,
    pub number: i64,
}

fn to_order(row: OrderRow, items: Vec<ItemRow>) -> Order {
    let shipping_address =
        serde_json::from_value(row.shipping_address).unwrap_or(ShippingAddress {
            street: None,
            city: None,
            state: None,
            postal_code: None,
            country: None,
        });
    Order {
        id: row.id,
        order_number: row.order_number,
        customer_info: CustomerInfo {
            name: row.customer_name,
            email: row.customer_email,
            phone: row.customer_phone,
            shipping_address,
        },
        items: items
            .into_iter()
            .map(|i| OrderItem {
                id: i.id,
                product_id: i.product_id,
                product_sku: i.product_sku,
                product_name: i.product_name,
                quantity: i.quantity,
                price_snapshot: i.price_snapshot,
                subtotal: i.subtotal,
            })
            .collect(),
        subtotal: row.subtotal,
        status: row.status,
        payment_status: row.payment_status,
        created_at: row.created_at,
        updated_at: row.updated_at,
        completed_at: row.completed_at,
    }
}

async fn load(state: &AppState, order_number: &str) -> Result<Order, Error> {
    let pool = state.db.pool();
    let row = db::orders::find_by_number(pool, order_number)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_number.to_owned()))?;
    let mut items = db::orders::items_of(pool, &[row.id]).await?;
    let items = items.remove(&row.id).unwrap_or_default();
    Ok(to_order(row, items))
}

/// An order by its number: the customer's lookup. An order checked out but not consumed
/// here yet is answered PENDING from what its checkout recorded (asked of the
/// customer-facing service), never 404. Anonymous callers get the name,
/// email, phone and address masked; a manager's token, or the order's email in
/// `X-Customer-Email`, shows them.
#[utoipa::path(
    get, path = "/api/v1/orders/{orderNumber}", tag = "orders", operation_id = "getOrder",
    params(("orderNumber" = String, Path, description = "e.g. ORD-20251006-7"),
           ("X-Customer-Email" = Option<String>, Header,
            description = "The order's email: proves the order is the caller's and unmasks the customer's details")),
    responses(
        (status = 200, body = Order),
        (status = 401, description = "A bearer token was sent and is invalid"),
        (status = 404, body = platform::Problem),
        (status = 429, description = "Too many anonymous lookups, or wrong emails, from this client; see Retry-After",
         body = platform::Problem),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(order_number): Path<String>,
) -> Result<Response, Error> {
    let manager = principal.is_some_and(|Extension(p)| p.has_role(platform::auth::ROLE_MANAGER));
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let client = state.clients.key(peer, &headers);
    let claimed = headers
        .get(CUSTOMER_EMAIL_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !manager);
    platform::limit::admit_lookup(
        &state.lookups,
        &state.guesses,
        &client,
        manager,
        claimed.is_some(),
    )
    .map_err(|refused| Error::TooManyRequests {
        detail: refused.detail().into(),
        retry_after: refused.retry_after(),
    })?;
    let order = match load(&state, &order_number).await {
        Ok(order) => order,
        // Asked by the customer service (recorded only), which answers from the
        // checkout's record itself: asking it back would count the lookup twice.
        Err(Error::OrderNotFound(number)) if headers.contains_key(RECORDED_ONLY_HEADER) => {
            return Err(Error::OrderNotFound(number))
        }
        Err(Error::OrderNotFound(number)) => {
            let forwarded = peer.map(|peer| state.clients.forwarded(peer.ip(), &headers));
            let answer = recorded_checkout(&state, &number, &headers, forwarded).await;
            if let Some(claimed) = claimed {
                count_claim(
                    &state,
                    &client,
                    &number,
                    answer.as_ref().is_some_and(|a| {
                        serde_json::from_slice::<serde_json::Value>(&a.body).is_ok_and(|order| {
                            order["customerInfo"]["email"]
                                .as_str()
                                .is_some_and(|email| claim_matches(email, claimed))
                        })
                    }),
                );
            }
            return Ok(match answer {
                Some(answer) => answer.into_response(),
                None => Error::OrderNotFound(number).into_response(),
            });
        }
        Err(e) => return Err(e),
    };
    if let Some(claimed) = claimed {
        count_claim(&state, &client, &order_number, order.is_owned_by(claimed));
    }
    Ok(Json(order.as_seen_by(manager, claimed)).into_response())
}

/// A right email gives its token back; a wrong one keeps it spent.
fn count_claim(state: &AppState, client: &str, number: &str, matched: bool) {
    if matched {
        state.guesses.give_back(client);
    } else {
        tracing::info!(client = %client, orderNumber = %number, "order lookup with a wrong email");
    }
}

/// An order not consumed yet, as the checkout that took it recorded it (PENDING): the
/// customer-facing service's answer when it has one, `None` otherwise (a number no
/// checkout took, or that service not answering).
async fn recorded_checkout(
    state: &AppState,
    number: &str,
    headers: &HeaderMap,
    client: Option<(HeaderName, HeaderValue)>,
) -> Option<platform::forward::Answer> {
    let client = client
        .as_ref()
        .and_then(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let mut extra = vec![(RECORDED_ONLY_HEADER, "true")];
    extra.extend(client);
    let answer = state
        .checkouts
        .get(
            &["api", "v1", "orders", number],
            headers,
            &[
                axum::http::header::AUTHORIZATION.as_str(),
                CUSTOMER_EMAIL_HEADER,
            ],
            &extra,
        )
        .await;
    match answer {
        Ok(answer) if answer.status == axum::http::StatusCode::OK => Some(answer),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, orderNumber = %number,
                "customer-facing service did not answer for an order not consumed yet");
            None
        }
    }
}

/// Page indexes of the list.
const PAGE_INDEX: Int = count_from(0);
/// Page sizes of the list.
const PAGE_SIZE: Int = Int { min: 1, max: 1000 };
/// Order numbers as the lookup reads them; a longer one is never found.
pub const ORDER_NUMBER: Text = Text::up_to(100);
/// Why a manager cancels.
const REASON: Text = Text::non_blank(1, 500);
const TRACKING_NUMBER: Text = Text::up_to(100);
const CARRIER: Text = Text::up_to(50);
const NOTES: Text = Text::up_to(500);

/// Query parameters of the list; parsed by hand so a bad value names its parameter. An
/// empty value means the parameter is absent, as in the original.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    #[param(schema_with = schema::status)]
    pub status: Option<String>,
    /// Exact, case-sensitive match.
    #[param(schema_with = schema::any_text)]
    pub customer_email: Option<String>,
    /// Inclusive lower bound on creation, ISO-8601 (e.g. 2025-09-30T00:00:00Z).
    #[param(schema_with = schema::date_time)]
    pub start_date: Option<String>,
    /// Inclusive upper bound on creation, ISO-8601.
    #[param(schema_with = schema::date_time)]
    pub end_date: Option<String>,
    /// Page index from 0 (default 0).
    #[param(schema_with = schema::page)]
    pub page: Option<String>,
    /// Page size (default 20).
    #[param(schema_with = schema::size)]
    pub size: Option<String>,
    /// Accepted and ignored: orders are always newest first.
    #[param(schema_with = schema::any_text)]
    pub sort_by: Option<String>,
    /// Accepted and ignored.
    #[param(schema_with = schema::any_text)]
    pub sort_dir: Option<String>,
}

/// Schemas of the list's parameters and the bodies, from the rules the handlers check.
mod schema {
    use super::*;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::Object;

    pub fn status() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(OrderStatus::ALL.iter().map(|s| s.as_str())))
            .build()
    }
    pub fn date_time() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build()
    }
    pub fn any_text() -> Object {
        Text::any().schema()
    }
    pub fn page() -> Object {
        PAGE_INDEX.schema()
    }
    pub fn size() -> Object {
        PAGE_SIZE.schema()
    }
    pub fn reason() -> Object {
        REASON.schema()
    }
    pub fn tracking_number() -> Object {
        TRACKING_NUMBER.nullable_schema()
    }
    pub fn carrier() -> Object {
        CARRIER.nullable_schema()
    }
    pub fn notes() -> Object {
        NOTES.nullable_schema()
    }
}

/// `value`, or `None` when it is empty.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn invalid(name: &str, value: &str) -> Error {
    Error::BadRequest(format!("Invalid value '{value}' for parameter '{name}'"))
}

fn parse_instant(name: &str, value: &str) -> Result<NaiveDateTime, Error> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| invalid(name, value))
}

fn parse_number(name: &str, value: Option<&str>, default: i64) -> Result<i64, Error> {
    match value {
        None => Ok(default),
        // A Java `int`, as the original binds it.
        Some(v) => v
            .trim()
            .parse::<i32>()
            .map(i64::from)
            .map_err(|_| invalid(name, v)),
    }
}

/// Orders, newest first, filtered and paged (managers only).
#[utoipa::path(
    get, path = "/api/v1/orders", tag = "orders", operation_id = "listOrders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderPage),
        (status = 400, description = "A bad filter or paging value", body = platform::Problem),
    )
)]
pub async fn list_orders(
    _manager: Manager,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, Error> {
    let status = present(&query.status)
        .map(|s| s.parse::<OrderStatus>().map_err(|()| invalid("status", s)))
        .transpose()?;
    let start = present(&query.start_date)
        .map(|v| parse_instant("startDate", v))
        .transpose()?;
    let end = present(&query.end_date)
        .map(|v| parse_instant("endDate", v))
        .transpose()?;
    let page = parse_number("page", present(&query.page), 0)?;
    let size = parse_number("size", present(&query.size), 20)?;
    if !PAGE_INDEX.contains(page) {
        return Err(Error::BadRequest(
            "Page index must not be less than zero".into(),
        ));
    }
    if size < PAGE_SIZE.min {
        return Err(Error::BadRequest(
            "Page size must not be less than one".into(),
        ));
    }
    if size > PAGE_SIZE.max {
        return Err(Error::BadRequest(format!(
            "Page size must not be greater than {}",
            PAGE_SIZE.max
        )));
    }
    let filter = OrderFilter {
        status,
        customer_email: present(&query.customer_email).map(str::to_owned),
        start,
        end,
    };
    let offset = page
        .checked_mul(size)
        .ok_or_else(|| invalid("page", &page.to_string()))?;
    let pool = state.db.pool();
    let (rows, total) = db::orders::list(pool, &filter, size, offset).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items = db::orders::items_of(pool, &ids).await?;
    let content = rows
        .into_iter()
        .map(|row| {
            let lines = items.remove(&row.id).unwrap_or_default();
            to_order(row, lines)
        })
        .collect();
    Ok(Json(OrderPage {
        content,
        total_elements: total,
        total_pages: (total + size - 1) / size,
        size,
        number: page,
    }))
}

/// Why a manager cancels.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    #[schema(required = true, schema_with = schema::reason)]
    pub reason: Option<String>,
}

/// Cancels a PENDING, PROCESSING or PAID order (managers only).
///
/// An order awaiting payment with no gateway call in flight is cancelled and never
/// charged (409 while a call is in flight); a PAID order is cancelled and refunded, its
/// `paymentStatus` becoming REFUNDED once the gateway has given the money back. Either
/// way its stock is released (`orders.released`). FULFILLED, CANCELLED and FAILED
/// orders are refused.
#[utoipa::path(
    post, path = "/api/v1/orders/{orderNumber}/cancel", tag = "orders", operation_id = "cancelOrder",
    params(("orderNumber" = String, Path)),
    request_body = CancelRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Order),
        (status = 400, description = "Invalid body", body = platform::Problem),
        (status = 404, body = platform::Problem),
        (status = 409, description = "The order's status does not allow it (invalid-order-state), or a payment call for the order is in flight; retry shortly (conflict)", body = platform::Problem),
    )
)]
pub async fn cancel_order(
    _manager: Manager,
    State(state): State<AppState>,
    Path(order_number): Path<String>,
    Json(body): Json<CancelRequest>,
) -> Result<Json<Order>, Error> {
    let reason = body.reason.unwrap_or_default();
    let refused = |message: &str| {
        Error::Validation(FieldErrors::from([(
            "reason".to_owned(),
            message.to_owned(),
        )]))
    };
    match REASON.check(&reason) {
        Ok(()) => {}
        Err(TextViolation::Blank) => return Err(refused("Cancellation reason is required")),
        Err(_) => return Err(refused("Reason must be between 1 and 500 characters")),
    }
    let mut tx = state.db.begin().await?;
    let order = db::orders::lock_by_number(&mut tx, &order_number)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_number.clone()))?;
    if !order.status.cancellable() {
        return Err(Error::NotCancellable {
            status: order.status,
            order_number,
        });
    }
    let reason = reason.trim();
    if order.status == OrderStatus::Paid {
        // The refund is made later by the refund worker, in this request's trace.
        let traceparent = platform::context::current().map(|c| c.trace.traceparent());
        db::orders::cancel_paid(&mut tx, order.id, reason, traceparent.as_deref()).await?;
    } else if order.payment_in_flight {
        // Whichever commits second sees the first: the charge records PAID, or this
        // cancel is retried once the call has answered.
        return Err(Error::PaymentInFlight(order_number));
    } else {
        db::orders::cancel_unpaid(&mut tx, order.id, reason).await?;
    }
    let released = crate::outgoing::order_released(
        &mut tx,
        &state.orders_released_topic,
        order.id,
        events::ReleasedStatus::Cancelled,
        reason,
    )
    .await?;
    tx.commit().await?;
    state.relay.publish_now(released);
    tracing::info!(orderNumber = %order_number, reason = %reason, was = %order.status,
        refund = order.status == OrderStatus::Paid, "order cancelled");
    load(&state, &order_number).await.map(Json)
}

/// Shipping details of a fulfilment; only logged, as the original.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillRequest {
    #[schema(schema_with = schema::tracking_number)]
    pub tracking_number: Option<String>,
    #[schema(schema_with = schema::carrier)]
    pub carrier: Option<String>,
    #[schema(schema_with = schema::notes)]
    pub notes: Option<String>,
}

/// Fulfils a PAID order (managers only).
#[utoipa::path(
    post, path = "/api/v1/orders/{orderNumber}/fulfill", tag = "orders", operation_id = "fulfillOrder",
    params(("orderNumber" = String, Path)),
    request_body = FulfillRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Order),
        (status = 400, description = "Invalid body", body = platform::Problem),
        (status = 404, body = platform::Problem),
        (status = 409, description = "The order is not PAID (invalid-order-state)", body = platform::Problem),
    )
)]
pub async fn fulfill_order(
    _manager: Manager,
    State(state): State<AppState>,
    Path(order_number): Path<String>,
    Json(body): Json<FulfillRequest>,
) -> Result<Json<Order>, Error> {
    let mut fields = FieldErrors::new();
    for (name, value, rule) in [
        ("trackingNumber", &body.tracking_number, TRACKING_NUMBER),
        ("carrier", &body.carrier, CARRIER),
        ("notes", &body.notes, NOTES),
    ] {
        if value.as_deref().is_some_and(|v| rule.check(v).is_err()) {
            fields.insert(
                name.to_owned(),
                format!("{name} must be at most {} characters", rule.max),
            );
        }
    }
    if !fields.is_empty() {
        return Err(Error::Validation(fields));
    }
    let mut tx = state.db.begin().await?;
    let order = db::orders::lock_by_number(&mut tx, &order_number)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_number.clone()))?;
    if order.status != OrderStatus::Paid {
        return Err(Error::NotFulfillable {
            status: order.status,
            order_number,
        });
    }
    db::orders::fulfil(&mut tx, order.id).await?;
    tx.commit().await?;
    tracing::info!(orderNumber = %order_number, trackingNumber = ?body.tracking_number,
        carrier = ?body.carrier, notes = ?body.notes, "order fulfilled");
    load(&state, &order_number).await.map(Json)
}
