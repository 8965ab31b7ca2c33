//! Checkout: one PostgreSQL transaction that claims the `Idempotency-Key`, locks the
//! cart and its products (in id order), takes the stock, numbers the order, writes the
//! `orders.created` outbox row, deletes the cart and stores the response on the key
//! (ADR 0003). After the commit the event is published at once.
//!
//! The key's row is the lock: a second request with the key waits briefly for the
//! first one's transaction; when that commits it replays the stored response, and when
//! it is still running the second gets 409. A failed checkout rolls the claim back, so
//! retrying the key runs the checkout again.

use crate::carts;
use crate::catalog;
use crate::db;
use crate::db::checkout::NumberedRows;
use crate::db::products::ForSale;
use crate::error::{Error, Result};
use crate::outbox::FIRST_ATTEMPT_LEASE;
use crate::state::AppState;
use axum::http::StatusCode;
use events::{Customer, EventHeaders, OrderCreated, OrderItem};
use platform::idempotency::{self, Claim, IdempotencyKey};
use platform::outbox::OutboxMessage;
use platform::time::now;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long a key is remembered.
pub const KEY_LIFETIME_HOURS: i64 = 24;
/// How long a request waits for another request with the same key before it gets 409.
const IN_FLIGHT_WAIT: &str = "500ms";

/// The response of a checkout, stored on its key and replayed byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutResponse {
    pub order_number: Option<String>,
    pub status: String,
    pub message: String,
}

/// A validated checkout request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutInput {
    pub session_id: String,
    pub customer_info: Customer,
}

impl CheckoutInput {
    /// Lowercase hex SHA-256 of the canonical request (field order `sessionId`,
    /// `customerInfo{name,email,phone,shippingAddress{...}}`, compact), as the original
    /// computes it: whitespace, key order and unknown fields do not change it.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What the client gets: a status and the exact JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

fn in_flight() -> Error {
    Error::Conflict(
        "A request with this Idempotency-Key is still being processed. Retry later.".into(),
    )
}

const KEY_REUSED: &str = "Idempotency key already used with different request body. \
     Please use a new idempotency key or retry with the same request.";

async fn claim(tx: &mut PgConnection, key: &IdempotencyKey, fingerprint: &str) -> Result<Claim> {
    let at = now();
    let expires_at = at + chrono::Duration::hours(KEY_LIFETIME_HOURS);
    // The lock wait goes back to none with the cart's read (place_order).
    Ok(idempotency::claim(tx, key, fingerprint, at, expires_at, IN_FLIGHT_WAIT).await?)
}

/// A checkout that committed: what to do after the commit.
struct Placed {
    reply: Reply,
    message: OutboxMessage,
    product_ids: Vec<Uuid>,
    order_number: String,
    order_id: Uuid,
    /// When the cart was deleted.
    at: chrono::NaiveDateTime,
}

enum Failure {
    /// Not enough stock: the original's non-problem 409 body.
    Stock(String),
    /// A line's price changed, or its product is no longer sold, since it was added.
    CartChanged(CartChanges),
    Error(Error),
}

/// What changed in a cart since its lines were added.
struct CartChanges {
    detail: String,
    /// One message per changed line, keyed `items[<productId>]`.
    lines: platform::FieldErrors,
    /// Lines still sold whose price changed: product and today's price.
    repriced: Vec<(Uuid, Decimal)>,
}

impl CartChanges {
    /// Compares each line with its product as it is now.
    fn of<'a>(
        lines: impl Iterator<Item = (Uuid, Decimal, &'a str, Decimal, bool)>,
    ) -> Option<Self> {
        let mut changed = Vec::new();
        let mut fields = platform::FieldErrors::new();
        let mut repriced = Vec::new();
        for (product_id, snapshot, sku, price, active) in lines {
            let message = if !active {
                format!("{sku} is no longer sold; remove it from the cart")
            } else if price != snapshot {
                repriced.push((product_id, price));
                format!("{sku} now costs {price} (was {snapshot})")
            } else {
                continue;
            };
            fields.insert(format!("items[{product_id}]"), message.clone());
            changed.push(message);
        }
        (!changed.is_empty()).then(|| Self {
            detail: format!(
                "The cart changed since it was filled: {}. Review the cart and check out again.",
                changed.join("; ")
            ),
            lines: fields,
            repriced,
        })
    }
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

/// Runs a checkout for `key`, or replays what the key already answered.
pub async fn checkout(
    state: &AppState,
    key: &IdempotencyKey,
    input: &CheckoutInput,
) -> Result<Reply> {
    let fingerprint = input.fingerprint();
    let mut tx = state.db.begin().await?;
    match claim(&mut tx, key, &fingerprint).await? {
        Claim::Claimed => {}
        Claim::InFlight => return Err(in_flight()),
        Claim::Taken {
            fingerprint: stored,
            response,
        } => {
            if stored != fingerprint {
                return Err(Error::Conflict(KEY_REUSED.into()));
            }
            let (status, body) = response.ok_or_else(in_flight)?;
            tracing::info!(idempotencyKey = %key, "checkout replayed");
            return Ok(Reply {
                status: StatusCode::from_u16(u16::try_from(status).unwrap_or(500))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            });
        }
    }
    state.metrics.checkout_attempt.inc();
    let timer = state.metrics.checkout_duration.start_timer();
    let placed = match place_order(state, &mut tx, key, input).await {
        Ok(placed) => tx.commit().await.map(|()| placed).map_err(Failure::from),
        Err(failure) => {
            // Also releases the key's claim and the cart's lock before any re-pricing.
            tx.rollback().await?;
            Err(failure)
        }
    };
    timer.observe_duration();
    match placed {
        Ok(placed) => {
            state.metrics.checkout_success.inc();
            tracing::info!(
                orderNumber = %placed.order_number, orderId = %placed.order_id,
                sessionId = %input.session_id, "order placed"
            );
            state.relay.publish_now(placed.message);
            carts::forget_cart(&state.cache, &input.session_id, placed.at).await;
            catalog::invalidate_products(&state.cache, &placed.product_ids, placed.at).await;
            Ok(placed.reply)
        }
        Err(Failure::Stock(message)) => {
            state.metrics.checkout_failures.inc();
            tracing::info!(sessionId = %input.session_id, reason = %message, "checkout refused");
            let body = serde_json::to_string(&CheckoutResponse {
                order_number: None,
                status: "FAILED".into(),
                message,
            })
            .map_err(anyhow::Error::from)?;
            Ok(Reply {
                status: StatusCode::CONFLICT,
                body,
            })
        }
        Err(Failure::CartChanged(changes)) => {
            state.metrics.checkout_failures.inc();
            tracing::info!(sessionId = %input.session_id, detail = %changes.detail,
                "checkout refused: the cart changed since it was filled");
            reprice_cart(state, &input.session_id, &changes.repriced).await?;
            Err(Error::CartChanged {
                detail: changes.detail,
                lines: changes.lines,
            })
        }
        Err(Failure::Error(e)) => {
            state.metrics.checkout_failures.inc();
            Err(e)
        }
    }
}

/// Brings the cart's lines to today's prices, so the customer sees what a second
/// checkout will charge.
async fn reprice_cart(
    state: &AppState,
    session_id: &str,
    repriced: &[(Uuid, Decimal)],
) -> Result<()> {
    if repriced.is_empty() {
        return Ok(());
    }
    let (ids, prices): (Vec<Uuid>, Vec<Decimal>) = repriced.iter().copied().unzip();
    let mut tx = state.db.begin().await?;
    let Some(cart) = db::carts::lock_live(&mut tx, session_id, now()).await? else {
        return Ok(());
    };
    db::carts::reprice_items(&mut tx, cart, &ids, &prices).await?;
    let stored = carts::touch_and_load(&mut tx, cart).await?;
    tx.commit().await?;
    carts::cache_cart(&state.cache, &stored).await;
    Ok(())
}

/// The locked cart a checkout turns into an order.
struct LockedCart {
    id: Uuid,
    subtotal: Decimal,
    /// In the order they were added.
    lines: Vec<Line>,
}

/// One line of that cart.
struct Line {
    product_id: Uuid,
    quantity: i32,
    price_snapshot: Decimal,
    subtotal: Decimal,
}

/// Places the order of the session's cart in `tx`: the cart and its products locked,
/// the lines checked against today's products, the stock taken and the cart deleted,
/// the order numbered with its outbox row and the reply stored on `key`.
async fn place_order(
    state: &AppState,
    tx: &mut PgConnection,
    key: &IdempotencyKey,
    input: &CheckoutInput,
) -> std::result::Result<Placed, Failure> {
    let at = now();
    let cart = lock_cart(tx, &input.session_id, at).await?;
    let products = lock_products(tx, &cart.lines).await?;
    let items = order_items(&cart.lines, &products)?;
    let ids: Vec<Uuid> = cart.lines.iter().map(|l| l.product_id).collect();
    let quantities: Vec<i32> = cart.lines.iter().map(|l| l.quantity).collect();
    // The stock taken and the cart gone, in one statement.
    db::checkout::take_stock_and_delete_cart(tx, &ids, &quantities, at, cart.id).await?;
    let order_id = Uuid::new_v4();
    let ctx = platform::context::current();
    let mut event = OrderCreated {
        event_id: Uuid::new_v4(),
        event_type: events::ORDER_CREATED.into(),
        event_version: events::EVENT_VERSION.into(),
        timestamp: events::EventTime::now(),
        correlation_id: ctx.as_ref().map(|c| c.correlation_id.clone()),
        order_id,
        order_number: String::new(),
        customer: input.customer_info.clone(),
        items,
        subtotal: cart.subtotal,
        cart_id: Some(cart.id),
    };
    let headers = EventHeaders::new(
        events::ORDER_CREATED_TYPE_ID,
        event.event_id,
        events::ORDER_CREATED,
    )
    .request(ctx.as_ref());
    let outbox_id = Uuid::new_v4();
    // The number is not known yet: the payload and the reply are written around it.
    let payload_json = serde_json::to_value(&event).map_err(anyhow::Error::from)?;
    let (reply_head, reply_tail) = reply_around_number(&input.customer_info.email)?;
    let order_number = db::checkout::number_order(
        tx,
        at,
        NumberedRows {
            outbox_id,
            order_id,
            payload: payload_json,
            topic: &state.orders_created_topic,
            headers: headers.to_json(),
            lease_until: at + chrono::Duration::from_std(FIRST_ATTEMPT_LEASE).unwrap_or_default(),
            reply_head: &reply_head,
            reply_tail: &reply_tail,
            key: key.as_str(),
        },
    )
    .await?;
    event.order_number.clone_from(&order_number);
    let payload = serde_json::to_string(&event).map_err(anyhow::Error::from)?;
    Ok(Placed {
        reply: Reply {
            status: StatusCode::CREATED,
            body: format!("{reply_head}{order_number}{reply_tail}"),
        },
        message: OutboxMessage {
            id: outbox_id,
            topic: state.orders_created_topic.clone(),
            key: order_id.to_string(),
            payload: payload.into_bytes(),
            headers: headers.into_vec(),
            attempts: 0,
        },
        product_ids: ids,
        order_number,
        order_id,
        at,
    })
}

/// Locks the live cart of `session_id` and reads its lines; a missing or empty cart is
/// a 409. The read also lifts the key's lock timeout (see [`claim`]) before it waits
/// for the cart's lock.
async fn lock_cart(
    tx: &mut PgConnection,
    session_id: &str,
    at: chrono::NaiveDateTime,
) -> std::result::Result<LockedCart, Failure> {
    let empty = || Failure::Error(Error::Conflict("Cannot checkout with empty cart".into()));
    let rows = db::checkout::lock_cart(tx, session_id, at).await?;
    let (id, subtotal) = rows.first().map(|r| (r.id, r.subtotal)).ok_or_else(empty)?;
    let lines: Vec<Line> = rows
        .into_iter()
        .filter_map(|r| {
            Some(Line {
                product_id: r.product_id?,
                quantity: r.quantity?,
                price_snapshot: r.price_snapshot?,
                subtotal: r.line_subtotal?,
            })
        })
        .collect();
    if lines.is_empty() {
        return Err(empty());
    }
    Ok(LockedCart {
        id,
        subtotal,
        lines,
    })
}

/// Locks the products of `lines` and reads them; a product gone since it was added is
/// a 404.
async fn lock_products(
    tx: &mut PgConnection,
    lines: &[Line],
) -> std::result::Result<HashMap<Uuid, ForSale>, Failure> {
    let mut product_ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    product_ids.sort();
    product_ids.dedup();
    // Locked in id order, so concurrent checkouts never deadlock.
    let products: HashMap<Uuid, ForSale> = db::products::lock_for_sale(tx, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    for line in lines {
        if !products.contains_key(&line.product_id) {
            return Err(Failure::Error(Error::not_found("Product", line.product_id)));
        }
    }
    Ok(products)
}

/// The order's items: refused when a line's price or product changed since it was
/// added, or when a product has too little stock.
fn order_items(
    lines: &[Line],
    products: &HashMap<Uuid, ForSale>,
) -> std::result::Result<Vec<OrderItem>, Failure> {
    // The customer pays today's price for what is still sold, never a stale snapshot.
    let changes = CartChanges::of(lines.iter().filter_map(|line| {
        let p = products.get(&line.product_id)?;
        Some((
            line.product_id,
            line.price_snapshot,
            p.sku.as_str(),
            p.price,
            p.is_active,
        ))
    }));
    if let Some(changes) = changes {
        return Err(Failure::CartChanged(changes));
    }
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let product = products
            .get(&line.product_id)
            .ok_or_else(|| Failure::Error(Error::not_found("Product", line.product_id)))?;
        if product.inventory_quantity < line.quantity {
            return Err(Failure::Stock(format!(
                "Insufficient inventory for product {}. Requested: {}, Available: {}",
                line.product_id, line.quantity, product.inventory_quantity
            )));
        }
        items.push(OrderItem {
            product_id: line.product_id,
            product_sku: product.sku.clone(),
            product_name: product.name.clone(),
            quantity: line.quantity,
            price_snapshot: line.price_snapshot,
            subtotal: line.subtotal,
        });
    }
    Ok(items)
}

/// The reply to a successful checkout, split where its order number goes.
fn reply_around_number(email: &str) -> Result<(String, String)> {
    const HEAD: &str = r#"{"orderNumber":""#;
    let body = serde_json::to_string(&CheckoutResponse {
        order_number: Some(String::new()),
        status: "PENDING".into(),
        message: format!(
            "Order submitted successfully. You will receive a confirmation email at {email}"
        ),
    })
    .map_err(anyhow::Error::from)?;
    match body.strip_prefix(HEAD) {
        Some(tail) => Ok((HEAD.to_owned(), tail.to_owned())),
        None => Err(Error::Internal(anyhow::anyhow!(
            "checkout reply does not start with its order number"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::ShippingAddress;

    fn input() -> CheckoutInput {
        CheckoutInput {
            session_id: "s-1".into(),
            customer_info: Customer {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                phone: "+14155551234".into(),
                shipping_address: ShippingAddress {
                    street: "1 Main St".into(),
                    city: "SF".into(),
                    state: "CA".into(),
                    postal_code: "94105".into(),
                    country: "USA".into(),
                },
            },
        }
    }

    #[test]
    fn the_reply_is_split_where_the_order_number_goes() {
        let (head, tail) = reply_around_number("ada@example.com").unwrap();
        let body = format!("{head}ORD-20251124-7{tail}");
        let reply: CheckoutResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(reply.order_number.as_deref(), Some("ORD-20251124-7"));
        assert_eq!(reply.status, "PENDING");
        assert!(reply.message.ends_with("ada@example.com"));
    }

    #[test]
    fn the_fingerprint_hashes_the_canonical_request_in_the_originals_field_order() {
        let canonical = r#"{"sessionId":"s-1","customerInfo":{"name":"Ada","email":"ada@example.com","phone":"+14155551234","shippingAddress":{"street":"1 Main St","city":"SF","state":"CA","postalCode":"94105","country":"USA"}}}"#;
        let expected: String = Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(input().fingerprint(), expected);
        let mut other = input();
        other.customer_info.name = "Grace".into();
        assert_ne!(other.fingerprint(), expected);
    }
}
