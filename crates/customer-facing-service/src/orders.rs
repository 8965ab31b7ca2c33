//! The order lookup, `GET /api/v1/orders/{orderNumber}`, on the service that took the
//! order. A checkout's 201 promises the order exists, but the order service learns of
//! it only when it consumes `orders.created`: asked in between, it would answer 404.
//! So this lookup asks the order service first and passes its answer on as it is; when
//! the order service does not have the order (404) or does not answer, it answers from
//! what the checkout recorded, the order's `orders.created` event in the outbox: the
//! order as PENDING. A number neither knows is 404.
//!
//! The order service asks back the same way when it does not have an order, with
//! [`RECORDED_ONLY_HEADER`], so that it too never answers 404 for a checked-out order;
//! that header keeps this side from asking the order service again, and this side
//! sends it too, so that the order service does not ask back a lookup that started
//! here (and count it twice).

use crate::error::{Error, Result};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use chrono::NaiveDateTime;
use events::order_view::{Order, CUSTOMER_EMAIL_HEADER, RECORDED_ONLY_HEADER};
use events::OrderCreated;
use platform::db::Db;
use platform::forward::{Answer, Forwarder};
use std::time::Duration;

/// What the lookup found.
#[derive(Debug)]
pub enum Found {
    /// The order service's own answer (any status but 404 and 5xx), passed on as it is.
    OrderService(Answer),
    /// The order service does not have it yet: the order as its checkout placed it.
    Pending(Box<Order>),
}

/// Asks the order service, and falls back to the outbox.
#[derive(Clone)]
pub struct OrderLookup {
    order_service: Forwarder,
}

impl OrderLookup {
    /// `base` is the order service's base URL; each call waits `timeout` for it.
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            order_service: Forwarder::new(base, timeout)
                .map_err(|e| anyhow::anyhow!("order service URL: {e}"))?,
        })
    }

    /// The order `number` as `manager` or the holder of the claimed email may see it.
    /// `headers` are the caller's; its token and email go to the order service, which
    /// decides what to show on its own answers, and so does `client` (the client
    /// address header naming the caller), so that it counts the lookup against the
    /// caller rather than against this service.
    pub async fn find(
        &self,
        db: &Db,
        number: &str,
        headers: &HeaderMap,
        manager: bool,
        client: Option<(HeaderName, HeaderValue)>,
    ) -> Result<Found> {
        let order_service_down = if headers.contains_key(RECORDED_ONLY_HEADER) {
            false
        } else {
            match self.ask_order_service(number, headers, client).await {
                Some(answer) if answer.status == StatusCode::NOT_FOUND => false,
                Some(answer) if !answer.status.is_server_error() => {
                    return Ok(Found::OrderService(answer))
                }
                _ => true,
            }
        };
        match recorded_checkout(db, number).await? {
            Some((event, created_at)) => {
                let claimed = headers
                    .get(CUSTOMER_EMAIL_HEADER)
                    .and_then(|v| v.to_str().ok());
                let order = Order::pending(&event, created_at).as_seen_by(manager, claimed);
                Ok(Found::Pending(Box::new(order)))
            }
            None if order_service_down => Err(Error::Unavailable(
                "The order service is not answering; please try again shortly.".into(),
            )),
            None => Err(Error::not_found("Order", number)),
        }
    }

    async fn ask_order_service(
        &self,
        number: &str,
        headers: &HeaderMap,
        client: Option<(HeaderName, HeaderValue)>,
    ) -> Option<Answer> {
        let client = client
            .as_ref()
            .and_then(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        // Recorded only: the order service must not ask back here for an order it does
        // not have; this side answers from the checkout's record itself.
        let mut extra = vec![(RECORDED_ONLY_HEADER, "true")];
        extra.extend(client);
        let answer = self
            .order_service
            .get(
                &["api", "v1", "orders", number],
                headers,
                &[header::AUTHORIZATION.as_str(), CUSTOMER_EMAIL_HEADER],
                &extra,
            )
            .await;
        match answer {
            Ok(answer) if answer.status.is_server_error() => {
                tracing::warn!(status = answer.status.as_u16(), orderNumber = %number,
                    "order service failed the lookup; answering from the checkout's record");
                Some(answer)
            }
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!(error = %e, orderNumber = %number,
                    "order service did not answer the lookup; answering from the checkout's record");
                None
            }
        }
    }
}

/// The `orders.created` event of the checkout that took `number`, and when it
/// committed; `None` for a number no checkout here took (or whose event is long
/// published and purged, by which time the order service has the order).
async fn recorded_checkout(db: &Db, number: &str) -> Result<Option<(OrderCreated, NaiveDateTime)>> {
    let row = crate::db::outbox::order_created(&mut *db.acquire().await?, number).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let event: OrderCreated = serde_json::from_value(row.payload)
        .map_err(|e| anyhow::anyhow!("outbox event of order {number} does not decode: {e}"))?;
    Ok(Some((event, row.created_at)))
}
