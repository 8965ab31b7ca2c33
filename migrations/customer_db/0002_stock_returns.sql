-- Stock given back by orders that ended FAILED or CANCELLED (ADR 0007), one row per
-- order. The primary key is the guard: the consumer of `orders.released` inserts the
-- row ON CONFLICT DO NOTHING and adds the quantities back only when it inserted, so a
-- second event for the same order (re-sent outbox row, DLQ replay, manual re-drive)
-- returns nothing twice.
CREATE TABLE stock_returns (
    -- The checkout's order id (orders.created's orderId, order_db's source_order_id).
    order_id     UUID PRIMARY KEY,
    order_number VARCHAR(20) NOT NULL,
    -- The event that applied it; later events for the order only count as duplicates.
    event_id     UUID NOT NULL,
    order_status VARCHAR(20) NOT NULL,
    reason       TEXT,
    -- [{productId, productSku, quantity, applied}]: applied is false for a line whose
    -- product no longer existed, so nothing was added back for it.
    items        JSONB NOT NULL,
    returned_at  TIMESTAMP NOT NULL,
    CONSTRAINT chk_stock_return_status CHECK (order_status IN ('FAILED', 'CANCELLED'))
);
