//! Orders: the public lookup by number (personal data masked unless the caller is a
//! manager or proves the order is theirs), and the manager's list, cancel and fulfil.

use super::AppState;
use crate::db;
use crate::db::orders::{ItemRow, OrderFilter, OrderRow};
use crate::domain::OrderStatus;
use crate::error::Error;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use chrono::{DateTime, NaiveDateTime};
use platform::auth::{Manager, Principal};
use platform::http::{Json, Query};
use platform::FieldErrors;
use serde::{Deserialize, Serialize};
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
        .with_state(state)
}

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
    get, path = "/api/v1/orders/{orderNumber}", tag = "orders",
    params(("orderNumber" = String, Path, description = "e.g. ORD-20251006-7"),
           ("X-Customer-Email" = Option<String>, Header,
            description = "The order's email: proves the order is the caller's and unmasks the customer's details")),
    responses(
        (status = 200, body = Order),
        (status = 401, description = "A bearer token was sent and is invalid"),
        (status = 404, body = crate::openapi::ProblemDetails),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    Path(order_number): Path<String>,
) -> Result<Response, Error> {
    let order = match load(&state, &order_number).await {
        Ok(order) => order,
        Err(Error::OrderNotFound(number)) => {
            return Ok(match recorded_checkout(&state, &number, &headers).await {
                Some(answer) => answer.into_response(),
                None => Error::OrderNotFound(number).into_response(),
            })
        }
        Err(e) => return Err(e),
    };
    let manager = principal.is_some_and(|Extension(p)| p.has_role(platform::auth::ROLE_MANAGER));
    let claimed = headers
        .get(CUSTOMER_EMAIL_HEADER)
        .and_then(|v| v.to_str().ok());
    Ok(Json(order.as_seen_by(manager, claimed)).into_response())
}

/// An order not consumed yet, as the checkout that took it recorded it (PENDING): the
/// customer-facing service's answer when it has one, `None` otherwise (a number no
/// checkout took, or that service not answering).
async fn recorded_checkout(
    state: &AppState,
    number: &str,
    headers: &HeaderMap,
) -> Option<platform::forward::Answer> {
    let answer = state
        .checkouts
        .get(
            &["api", "v1", "orders", number],
            headers,
            &[
                axum::http::header::AUTHORIZATION.as_str(),
                CUSTOMER_EMAIL_HEADER,
            ],
            &[(RECORDED_ONLY_HEADER, "true")],
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

/// Query parameters of the list; parsed by hand so a bad value names its parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// PENDING, PROCESSING, PAID, FULFILLED, CANCELLED or FAILED.
    pub status: Option<String>,
    /// Exact, case-sensitive match.
    pub customer_email: Option<String>,
    /// Inclusive lower bound on creation, ISO-8601 (e.g. 2025-09-30T00:00:00Z).
    pub start_date: Option<String>,
    /// Inclusive upper bound on creation, ISO-8601.
    pub end_date: Option<String>,
    /// Page index from 0 (default 0).
    pub page: Option<String>,
    /// Page size from 1 to 1000 (default 20).
    pub size: Option<String>,
    /// Accepted and ignored: orders are always newest first.
    pub sort_by: Option<String>,
    /// Accepted and ignored.
    pub sort_dir: Option<String>,
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
        Some(v) => v.trim().parse().map_err(|_| invalid(name, v)),
    }
}

/// Orders, newest first, filtered and paged (managers only).
#[utoipa::path(
    get, path = "/api/v1/orders", tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderPage),
        (status = 400, description = "A bad filter or paging value", body = crate::openapi::ProblemDetails),
        (status = 401, description = "No or invalid token"),
        (status = 403, description = "Not a manager"),
    )
)]
pub async fn list_orders(
    _manager: Manager,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, Error> {
    let status = query
        .status
        .as_deref()
        .map(|s| s.parse::<OrderStatus>().map_err(|()| invalid("status", s)))
        .transpose()?;
    let start = query
        .start_date
        .as_deref()
        .map(|v| parse_instant("startDate", v))
        .transpose()?;
    let end = query
        .end_date
        .as_deref()
        .map(|v| parse_instant("endDate", v))
        .transpose()?;
    let page = parse_number("page", query.page.as_deref(), 0)?;
    let size = parse_number("size", query.size.as_deref(), 20)?;
    if page < 0 {
        return Err(Error::BadRequest(
            "Page index must not be less than zero".into(),
        ));
    }
    if size < 1 {
        return Err(Error::BadRequest(
            "Page size must not be less than one".into(),
        ));
    }
    if size > 1000 {
        return Err(Error::BadRequest(
            "Page size must not be greater than 1000".into(),
        ));
    }
    let filter = OrderFilter {
        status,
        customer_email: query.customer_email,
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
    /// Required, 1 to 500 characters.
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
    post, path = "/api/v1/orders/{orderNumber}/cancel", tag = "orders",
    params(("orderNumber" = String, Path)),
    request_body = CancelRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Order),
        (status = 400, description = "Invalid state or body", body = crate::openapi::ProblemDetails),
        (status = 401, description = "No or invalid token"),
        (status = 403, description = "Not a manager"),
        (status = 404, body = crate::openapi::ProblemDetails),
        (status = 409, description = "A payment call for the order is in flight; retry shortly", body = crate::openapi::ProblemDetails),
    )
)]
pub async fn cancel_order(
    _manager: Manager,
    State(state): State<AppState>,
    Path(order_number): Path<String>,
    Json(body): Json<CancelRequest>,
) -> Result<Json<Order>, Error> {
    let reason = body.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(Error::Validation(FieldErrors::from([(
            "reason".to_owned(),
            "Cancellation reason is required".to_owned(),
        )])));
    }
    if reason.chars().count() > 500 {
        return Err(Error::Validation(FieldErrors::from([(
            "reason".to_owned(),
            "Reason must be between 1 and 500 characters".to_owned(),
        )])));
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
        db::orders::cancel_paid(&mut tx, order.id, reason).await?;
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
    /// At most 100 characters.
    pub tracking_number: Option<String>,
    /// At most 50 characters.
    pub carrier: Option<String>,
    /// At most 500 characters.
    pub notes: Option<String>,
}

/// Fulfils a PAID order (managers only).
#[utoipa::path(
    post, path = "/api/v1/orders/{orderNumber}/fulfill", tag = "orders",
    params(("orderNumber" = String, Path)),
    request_body = FulfillRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Order),
        (status = 400, description = "Invalid state or body", body = crate::openapi::ProblemDetails),
        (status = 401, description = "No or invalid token"),
        (status = 403, description = "Not a manager"),
        (status = 404, body = crate::openapi::ProblemDetails),
    )
)]
pub async fn fulfill_order(
    _manager: Manager,
    State(state): State<AppState>,
    Path(order_number): Path<String>,
    Json(body): Json<FulfillRequest>,
) -> Result<Json<Order>, Error> {
    let mut fields = FieldErrors::new();
    for (name, value, max) in [
        ("trackingNumber", &body.tracking_number, 100),
        ("carrier", &body.carrier, 50),
        ("notes", &body.notes, 500),
    ] {
        if value.as_deref().is_some_and(|v| v.chars().count() > max) {
            fields.insert(
                name.to_owned(),
                format!("{name} must be at most {max} characters"),
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
