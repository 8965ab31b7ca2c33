//! Writes driven by consumed events: the `processed_events` guard and new orders.

use events::OrderCreated;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// What [`create_order`] did with an OrderCreated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The order, its items and its payment are in.
    Order,
    /// The event was processed before: nothing changed.
    Duplicate,
    /// The event is new, but an order for its checkout (`orderId`) exists already: the
    /// event is recorded, nothing created.
    OrderExists,
}

/// How the payment of a new order starts.
#[derive(Debug, Clone, Copy)]
pub struct NewPayment {
    pub id: Uuid,
    /// When the retry worker may take the payment up, from now.
    pub grace_secs: f64,
    /// `Some(lease)`: the caller pays the order right away, so the order starts
    /// PROCESSING and the payment leased to it for `lease` seconds, as
    /// [`super::payments::claim`] would leave them. `None`: PENDING, for the worker.
    pub claimed_for_secs: Option<f64>,
}

/// Records an OrderCreated event and creates its order (the checkout's id; line n gets
/// [`events::order_view::line_id`], so the order reads the same from the customer-facing
/// service's lookup before this and from ours after), its items and its payment, in
/// one statement: one round trip and one commit per order, however many items.
pub async fn create_order(
    conn: &mut PgConnection,
    event: &OrderCreated,
    payment: NewPayment,
) -> Result<Created, sqlx::Error> {
    let customer = &event.customer;
    let address = serde_json::json!({
        "street": customer.shipping_address.street,
        "city": customer.shipping_address.city,
        "state": customer.shipping_address.state,
        "postalCode": customer.shipping_address.postal_code,
        "country": customer.shipping_address.country,
    });
    let n = event.items.len();
    let mut ids = Vec::with_capacity(n);
    let mut product_ids = Vec::with_capacity(n);
    let mut skus = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut quantities = Vec::with_capacity(n);
    let mut prices = Vec::with_capacity(n);
    let mut subtotals = Vec::with_capacity(n);
    let mut lines = Vec::with_capacity(n);
    for (line, item) in event.items.iter().enumerate() {
        ids.push(events::order_view::line_id(event.order_id, line));
        product_ids.push(item.product_id);
        skus.push(item.product_sku.clone());
        names.push(item.product_name.clone());
        quantities.push(item.quantity);
        prices.push(item.price_snapshot);
        // As the original: the line subtotal is recomputed, not trusted.
        subtotals.push(item.price_snapshot * Decimal::from(item.quantity));
        lines.push(i32::try_from(line).unwrap_or(i32::MAX));
    }
    // Foreign keys are checked at the end of the statement, so the items, the payment
    // and the event may point at the order inserted beside them.
    let row = sqlx::query!(
        r#"WITH new_order AS (
               INSERT INTO orders (id, order_number, customer_name, customer_email,
                   customer_phone, shipping_address, subtotal, status, source_order_id,
                   correlation_id)
               SELECT $1, $2, $3, $4, $5, $6, $7,
                   CASE WHEN $8::float8 IS NULL THEN 'PENDING'::order_status
                        ELSE 'PROCESSING'::order_status END,
                   $1, $9
               WHERE NOT EXISTS (SELECT 1 FROM processed_events WHERE event_id = $10)
               ON CONFLICT DO NOTHING
               RETURNING id),
           event AS (
               INSERT INTO processed_events (event_id, event_type, order_id)
               VALUES ($10, $11, (SELECT id FROM new_order))
               ON CONFLICT (event_id) DO NOTHING
               RETURNING event_id),
           items AS (
               INSERT INTO order_items (order_id, id, product_id, product_sku, product_name,
                   quantity, price_snapshot, subtotal, line_number)
               SELECT o.id, u.* FROM new_order o,
                   UNNEST($12::uuid[], $13::uuid[], $14::text[], $15::text[], $16::int4[],
                          $17::numeric[], $18::numeric[], $19::int4[]) u),
           payment AS (
               INSERT INTO payment_transactions (id, order_id, amount, status, payment_method,
                   next_attempt_at, locked_until)
               SELECT $20, o.id, $7, 'PENDING', 'MOCK',
                   (now() AT TIME ZONE 'UTC') + make_interval(secs => $21),
                   (now() AT TIME ZONE 'UTC') + make_interval(secs => $8::float8)
               FROM new_order o)
           SELECT EXISTS (SELECT 1 FROM new_order) AS "created!",
                  EXISTS (SELECT 1 FROM event) AS "event_new!""#,
        event.order_id,
        event.order_number,
        customer.name,
        customer.email,
        customer.phone,
        address,
        event.subtotal,
        payment.claimed_for_secs,
        event.correlation_id,
        event.event_id,
        event.event_type,
        &ids,
        &product_ids,
        &skus,
        &names,
        &quantities,
        &prices,
        &subtotals,
        &lines,
        payment.id,
        payment.grace_secs
    )
    .fetch_one(conn)
    .await?;
    Ok(match (row.created, row.event_new) {
        (true, _) => Created::Order,
        (false, true) => Created::OrderExists,
        (false, false) => Created::Duplicate,
    })
}

/// Deletes `processed_events` rows older than `age_secs`; returns how many.
pub async fn purge_processed(conn: &mut PgConnection, age_secs: f64) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "DELETE FROM processed_events \
         WHERE processed_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)",
        age_secs
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}
