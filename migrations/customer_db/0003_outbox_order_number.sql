-- The order lookup answers an order the order service does not have yet from its
-- checkout's orders.created event (issue 11, "read your own order"): find that event
-- by order number.
CREATE INDEX idx_order_created_outbox_order_number
    ON order_created_outbox ((payload ->> 'orderNumber'));
