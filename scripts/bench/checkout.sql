-- One benchmark iteration as PostgreSQL sees it: the statements the customer-facing
-- service runs for `POST /carts/{sessionId}/items` and then `POST /checkout`, in the
-- same transactions and order (crates/customer-facing-service: routes/carts.rs,
-- carts.rs, checkout.rs, outbox.rs). Run by scripts/bench.sh after checkout-setup.sql.
\set n random(1, 50)
\set s random(1, 2000000000)
-- add to cart
BEGIN;
DELETE FROM carts WHERE session_id = 'pgbench-:s-:client_id' AND expires_at <= now();
INSERT INTO carts (id, session_id, subtotal, created_at, updated_at, expires_at)
  VALUES (gen_random_uuid(), 'pgbench-:s-:client_id', 0, now(), now(), now() + interval '30 minutes')
  ON CONFLICT (session_id) DO UPDATE SET session_id = EXCLUDED.session_id
  RETURNING id AS cart_id \gset
SELECT p.price, p.inventory_quantity, p.is_active, i.id, i.quantity
  FROM products p LEFT JOIN cart_items i ON i.cart_id = ':cart_id' AND i.product_id = p.id
  WHERE p.id = md5('pgbench-product-:n')::uuid;
INSERT INTO cart_items (id, cart_id, product_id, quantity, price_snapshot, subtotal, created_at, updated_at, item_index)
  VALUES (gen_random_uuid(), ':cart_id', md5('pgbench-product-:n')::uuid, 1, 9.99, 9.99, now(), now(),
          (SELECT COALESCE(MAX(item_index) + 1, 0) FROM cart_items WHERE cart_id = ':cart_id'));
UPDATE carts SET subtotal = (SELECT COALESCE(SUM(subtotal), 0) FROM cart_items WHERE cart_id = ':cart_id'),
  updated_at = now(), expires_at = now() + interval '30 minutes' WHERE id = ':cart_id'
  RETURNING id, session_id, subtotal, created_at, updated_at, expires_at;
SELECT id, product_id, quantity, price_snapshot, subtotal FROM cart_items WHERE cart_id = ':cart_id' ORDER BY item_index, created_at;
COMMIT;
SELECT id, sku, name FROM products WHERE id = ANY(ARRAY[md5('pgbench-product-:n')::uuid]);
-- check out
BEGIN;
WITH wait AS MATERIALIZED (SELECT set_config('lock_timeout', '500ms', true))
INSERT INTO checkout_idempotency (idempotency_key, request_fingerprint, status, created_at, expires_at)
  SELECT 'pgbench-:s-:client_id', md5(':s'), 'IN_PROGRESS', now(), now() + interval '24 hours' FROM wait
  ON CONFLICT (idempotency_key) DO UPDATE SET request_fingerprint = EXCLUDED.request_fingerprint, status = 'IN_PROGRESS',
    response_status = NULL, response_body = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
  WHERE checkout_idempotency.expires_at <= EXCLUDED.created_at
  RETURNING idempotency_key;
WITH wait AS MATERIALIZED (SELECT set_config('lock_timeout', '0', true))
SELECT c.id, c.subtotal, i.product_id, i.quantity, i.price_snapshot, i.subtotal
  FROM wait, carts c LEFT JOIN cart_items i ON i.cart_id = c.id
  WHERE c.session_id = 'pgbench-:s-:client_id' AND c.expires_at > now()
  ORDER BY i.item_index, i.created_at FOR UPDATE OF c;
SELECT id, sku, name, inventory_quantity, price, is_active FROM products WHERE id = ANY(ARRAY[md5('pgbench-product-:n')::uuid]) ORDER BY id FOR UPDATE;
WITH gone AS (DELETE FROM carts WHERE id = ':cart_id')
UPDATE products p SET inventory_quantity = p.inventory_quantity - u.quantity, version = p.version + 1, updated_at = now()
  FROM UNNEST(ARRAY[md5('pgbench-product-:n')::uuid], ARRAY[1]) AS u(id, quantity) WHERE p.id = u.id;
WITH numbered AS (
    INSERT INTO order_number_sequence (date_key, last_sequence, created_at, updated_at)
    VALUES ('19700101', 1, now(), now())
    ON CONFLICT (date_key) DO UPDATE SET last_sequence = order_number_sequence.last_sequence + 1, updated_at = EXCLUDED.updated_at
    RETURNING 'ORD-' || date_key || '-' || last_sequence AS order_number
  ), outbox AS (
    INSERT INTO order_created_outbox (id, aggregate_id, aggregate_type, event_type, payload, created_at, status, retry_count,
        topic, headers, next_attempt_at, locked_until)
    SELECT md5('pgbench-outbox-:s-:client_id')::uuid, gen_random_uuid(), 'ORDER', 'OrderCreatedEvent',
        jsonb_set('{"eventType":"ORDER_CREATED","eventVersion":"1.0","correlationId":"pgbench","orderNumber":"","customer":{"name":"Bench Customer","email":"bench@example.com","phone":"+14155551234","shippingAddress":{"street":"1 Main St","city":"Springfield","state":"CA","postalCode":"94105","country":"USA"}},"items":[{"productSku":"PGBENCH-1","productName":"pgbench product","quantity":1,"priceSnapshot":9.99,"subtotal":9.99}],"subtotal":9.99}'::jsonb,
                  '{orderNumber}', to_jsonb(order_number)),
        now(), 'PENDING', 0, 'orders.created', '{"eventType":"ORDER_CREATED"}'::jsonb, now(), now() + interval '5 seconds'
    FROM numbered
  ), reply AS (
    UPDATE checkout_idempotency SET status = 'COMPLETED', response_status = 201,
      response_body = '{"orderNumber":"' || order_number || '","status":"PENDING","message":"Order submitted successfully. You will receive a confirmation email at bench@example.com"}'
    FROM numbered WHERE idempotency_key = 'pgbench-:s-:client_id'
  )
SELECT order_number FROM numbered;
COMMIT;
-- the event published: the outbox row marked
UPDATE order_created_outbox SET status = 'PUBLISHED', published_at = now(), locked_until = NULL
  WHERE id = md5('pgbench-outbox-:s-:client_id')::uuid;
