-- Fixture for scripts/bench/checkout.sql: 50 products with plenty of stock, whose ids are
-- md5('pgbench-product-<n>')::uuid so the script can name them without a lookup.
INSERT INTO categories (id, name, description, created_at, updated_at)
VALUES (md5('pgbench-category')::uuid, 'pgbench category', 'benchmark fixture', now(), now())
ON CONFLICT DO NOTHING;
INSERT INTO products (id, sku, name, description, price, inventory_quantity, category_id, is_active, created_at, updated_at, version)
SELECT md5('pgbench-product-' || n)::uuid, 'PGBENCH-' || n, 'pgbench product ' || n, 'benchmark fixture', 9.99,
       100000000, md5('pgbench-category')::uuid, true, now(), now(), 0
FROM generate_series(1, 50) AS n
ON CONFLICT DO NOTHING;
