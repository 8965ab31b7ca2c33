//! Writes driven by consumed events: the `processed_events` guard and new orders.

use events::OrderCreated;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// Claims an event id for this transaction: false when it was processed before.
pub async fn claim_event(
    conn: &mut PgConnection,
    event_id: Uuid,
    event_type: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "INSERT INTO processed_events (event_id, event_type) VALUES ($1, $2) \
         ON CONFLICT (event_id) DO NOTHING",
        event_id,
        event_type
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Links a processed event to the order it touched.
pub async fn link_event(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE processed_events SET order_id = $2 WHERE event_id = $1",
        event_id,
        order_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts the order of an OrderCreated event (PENDING), its items and its PENDING
/// payment transaction, due for the retry worker after `grace_secs`. Returns the new
/// order id, or `None` when an order for the event's `orderId` exists already.
pub async fn insert_order(
    conn: &mut PgConnection,
    event: &OrderCreated,
    grace_secs: f64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let customer = &event.customer;
    let address = serde_json::json!({
        "street": customer.shipping_address.street,
        "city": customer.shipping_address.city,
        "state": customer.shipping_address.state,
        "postalCode": customer.shipping_address.postal_code,
        "country": customer.shipping_address.country,
    });
    let order_id = sqlx::query_scalar!(
        "INSERT INTO orders (order_number, customer_name, customer_email, customer_phone, \
             shipping_address, subtotal, status, source_order_id, correlation_id) \
         VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7, $8) \
         ON CONFLICT (source_order_id) DO NOTHING \
         RETURNING id",
        event.order_number,
        customer.name,
        customer.email,
        customer.phone,
        address,
        event.subtotal,
        event.order_id,
        event.correlation_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(order_id) = order_id else {
        return Ok(None);
    };
    let n = event.items.len();
    let (
        mut product_ids,
        mut skus,
        mut names,
        mut quantities,
        mut prices,
        mut subtotals,
        mut lines,
    ) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (line, item) in event.items.iter().enumerate() {
        product_ids.push(item.product_id);
        skus.push(item.product_sku.clone());
        names.push(item.product_name.clone());
        quantities.push(item.quantity);
        prices.push(item.price_snapshot);
        // As the original: the line subtotal is recomputed, not trusted.
        subtotals.push(item.price_snapshot * Decimal::from(item.quantity));
        lines.push(i32::try_from(line).unwrap_or(i32::MAX));
    }
    sqlx::query!(
        "INSERT INTO order_items (order_id, product_id, product_sku, product_name, quantity, \
             price_snapshot, subtotal, line_number) \
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::int4[], \
             $6::numeric[], $7::numeric[], $8::int4[])",
        order_id,
        &product_ids,
        &skus,
        &names,
        &quantities,
        &prices,
        &subtotals,
        &lines
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO payment_transactions (order_id, amount, status, payment_method, next_attempt_at) \
         VALUES ($1, $2, 'PENDING', 'MOCK', \
             (now() AT TIME ZONE 'UTC') + make_interval(secs => $3))",
        order_id,
        event.subtotal,
        grace_secs
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(order_id))
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
