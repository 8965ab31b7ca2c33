-- order_db: orders, their items and payment transactions, the processed-events guard of
-- the consumers, and the payment_completed outbox.
-- Column names and types follow the original Flyway schema; what was added is
-- commented. Every time stamp is UTC wall-clock time (TIMESTAMP WITHOUT TIME ZONE).

CREATE TYPE order_status AS ENUM ('PENDING', 'PROCESSING', 'PAID', 'FULFILLED', 'CANCELLED', 'FAILED');
CREATE TYPE payment_status AS ENUM ('PENDING', 'SUCCESS', 'FAILED');

CREATE TABLE orders (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_number     VARCHAR(20) NOT NULL,
    customer_name    VARCHAR(200) NOT NULL,
    customer_email   VARCHAR(100) NOT NULL,
    customer_phone   VARCHAR(20) NOT NULL,
    shipping_address JSONB NOT NULL,
    subtotal         DECIMAL(10, 2) NOT NULL,
    status           order_status NOT NULL DEFAULT 'PENDING',
    created_at       TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at       TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    completed_at     TIMESTAMP,
    -- Added: the customer-facing service's order id (the OrderCreated orderId and record
    -- key), so a re-sent checkout with a new event id still creates one order.
    source_order_id  UUID NOT NULL,
    -- Added: the correlation id of the checkout, carried into payments.completed.
    correlation_id   VARCHAR(128),
    -- Added: why a manager cancelled (the original only logged it).
    cancel_reason    VARCHAR(500),
    CONSTRAINT uk_order_number UNIQUE (order_number),
    CONSTRAINT uk_order_source_order UNIQUE (source_order_id)
);

CREATE INDEX idx_order_status ON orders (status);
CREATE INDEX idx_order_created ON orders (created_at);
CREATE INDEX idx_order_email ON orders (customer_email);
CREATE INDEX idx_order_shipping_address ON orders USING GIN (shipping_address);
CREATE INDEX idx_order_status_created ON orders (status, created_at);
CREATE INDEX idx_order_email_status ON orders (customer_email, status);
CREATE INDEX idx_order_completed ON orders (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE order_items (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id       UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id     UUID NOT NULL,
    product_sku    VARCHAR(50) NOT NULL,
    product_name   VARCHAR(200) NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    price_snapshot DECIMAL(10, 2) NOT NULL,
    subtotal       DECIMAL(10, 2) NOT NULL,
    created_at     TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- Added: position in the event, so items come back in a stable order.
    line_number    INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX idx_orderitem_order ON order_items (order_id);
CREATE INDEX idx_orderitem_product ON order_items (product_id);
CREATE INDEX idx_orderitem_product_created ON order_items (product_id, created_at);

CREATE TABLE payment_transactions (
    id                      UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id                UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    amount                  DECIMAL(10, 2) NOT NULL,
    status                  payment_status NOT NULL DEFAULT 'PENDING',
    payment_method          VARCHAR(50) NOT NULL,
    external_transaction_id VARCHAR(100),
    failure_reason          TEXT,
    -- Gateway calls made so far (the original started at 1 and never counted).
    attempt_count           INTEGER NOT NULL DEFAULT 0,
    created_at              TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at              TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    completed_at            TIMESTAMP,
    -- Added: when the retry worker may call the gateway again for a PENDING payment.
    next_attempt_at         TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- Added: the last transport or gateway error, for operators.
    last_error              TEXT,
    -- Added: the gateway's charge id once it answered.
    gateway_payment_id      VARCHAR(100),
    -- Added: lease of the worker calling the gateway; while it lasts no other worker
    -- calls for this order and a cancel is refused.
    locked_until            TIMESTAMP,
    CONSTRAINT uk_payment_order UNIQUE (order_id)
);

CREATE INDEX idx_payment_status ON payment_transactions (status);
CREATE INDEX idx_payment_external ON payment_transactions (external_transaction_id);
CREATE INDEX idx_payment_pending ON payment_transactions (status, next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX idx_payment_failed ON payment_transactions (status, created_at) WHERE status = 'FAILED';

CREATE TABLE processed_events (
    event_id     UUID PRIMARY KEY,
    event_type   VARCHAR(50) NOT NULL,
    processed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- Filled by this service (the original never did).
    order_id     UUID REFERENCES orders (id) ON DELETE SET NULL
);

CREATE INDEX idx_processed_event_type ON processed_events (event_type);
CREATE INDEX idx_processed_event_order ON processed_events (order_id);
CREATE INDEX idx_processed_event_timestamp ON processed_events (processed_at);

-- payments.completed outbox: the same shape as customer_db's order_created_outbox, so
-- operators requeue FAILED rows the same way.
CREATE TABLE payment_completed_outbox (
    id              UUID PRIMARY KEY,
    aggregate_id    UUID NOT NULL,
    aggregate_type  VARCHAR(50) NOT NULL DEFAULT 'ORDER',
    event_type      VARCHAR(100) NOT NULL DEFAULT 'PaymentCompletedEvent',
    payload         JSONB NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    published_at    TIMESTAMP,
    status          VARCHAR(20) NOT NULL DEFAULT 'PENDING',
    retry_count     INT NOT NULL DEFAULT 0,
    error_message   TEXT,
    topic           VARCHAR(255) NOT NULL,
    headers         JSONB NOT NULL DEFAULT '{}'::jsonb,
    next_attempt_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    locked_until    TIMESTAMP,
    CONSTRAINT chk_payment_outbox_status CHECK (status IN ('PENDING', 'PUBLISHED', 'FAILED'))
);

CREATE INDEX idx_payment_outbox_due ON payment_completed_outbox (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX idx_payment_outbox_status ON payment_completed_outbox (status);
