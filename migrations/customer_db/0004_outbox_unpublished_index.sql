-- The relay's gauges and the health check count the outbox rows not yet published
-- (PENDING and FAILED) every few seconds. The only status index covered PENDING, so
-- that count read the whole table, published rows included: a week of history on
-- every probe. This index holds the unpublished rows only, a handful normally.
CREATE INDEX idx_outbox_unpublished
    ON order_created_outbox (status, created_at)
    WHERE status IN ('PENDING', 'FAILED');
