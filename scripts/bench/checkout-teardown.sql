-- Removes what scripts/bench/checkout.sql left behind.
DELETE FROM order_created_outbox WHERE payload->>'correlationId' = 'pgbench';
DELETE FROM checkout_idempotency WHERE idempotency_key LIKE 'pgbench-%';
DELETE FROM carts WHERE session_id LIKE 'pgbench-%';
DELETE FROM products WHERE category_id = md5('pgbench-category')::uuid;
DELETE FROM categories WHERE id = md5('pgbench-category')::uuid;
DELETE FROM order_number_sequence WHERE date_key = '19700101';
