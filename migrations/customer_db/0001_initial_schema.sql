-- customer_db: catalogue, guest carts, order numbers, checkout idempotency, the
-- order_created outbox and the managers who may change the catalogue.
-- Column names and types follow the original Flyway schema; what was added is
-- commented. Every time stamp is UTC wall-clock time (TIMESTAMP WITHOUT TIME ZONE).

CREATE TABLE categories (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        VARCHAR(100) NOT NULL,
    description TEXT,
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uk_category_name UNIQUE (name)
);

CREATE TABLE products (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    sku                VARCHAR(50) NOT NULL,
    name               VARCHAR(200) NOT NULL,
    description        TEXT,
    price              DECIMAL(10, 2) NOT NULL CHECK (price > 0),
    inventory_quantity INTEGER NOT NULL CHECK (inventory_quantity >= 0),
    category_id        UUID NOT NULL REFERENCES categories (id),
    is_active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at         TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at         TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    version            BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uk_product_sku UNIQUE (sku)
);

CREATE INDEX idx_product_category ON products (category_id);
CREATE INDEX idx_product_active ON products (is_active);
CREATE INDEX idx_product_category_active ON products (category_id, is_active) WHERE is_active;
CREATE INDEX idx_product_in_stock ON products (id) WHERE is_active AND inventory_quantity > 0;
CREATE INDEX idx_product_name_search ON products USING GIN (to_tsvector('english', name));

CREATE TABLE carts (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id VARCHAR(100) NOT NULL,
    subtotal   DECIMAL(10, 2) NOT NULL DEFAULT 0.00,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    CONSTRAINT uk_cart_session UNIQUE (session_id)
);

CREATE INDEX idx_cart_expires ON carts (expires_at);

CREATE TABLE cart_items (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    cart_id        UUID NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id     UUID NOT NULL REFERENCES products (id),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    price_snapshot DECIMAL(10, 2) NOT NULL,
    subtotal       DECIMAL(10, 2) NOT NULL,
    created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- 0-based position of the line in its cart: lines keep insertion order.
    item_index     INTEGER NOT NULL,
    CONSTRAINT uk_cart_product UNIQUE (cart_id, product_id)
);

CREATE INDEX idx_cartitem_cart ON cart_items (cart_id);
CREATE INDEX idx_cartitem_product ON cart_items (product_id);

-- One row per day ('yyyyMMdd'); the checkout transaction increments it, so order
-- numbers are unique across replicas and a rolled-back checkout leaves no gap.
CREATE TABLE order_number_sequence (
    date_key      VARCHAR(8) PRIMARY KEY,
    last_sequence INT NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The key's row is claimed inside the checkout transaction (ADR 0003). `status` is
-- IN_PROGRESS while that transaction runs and COMPLETED once it committed, so the
-- runbook's query (section 5.3) runs as written.
CREATE TABLE checkout_idempotency (
    idempotency_key     VARCHAR(255) PRIMARY KEY,
    request_fingerprint VARCHAR(64) NOT NULL,
    status              VARCHAR(20) NOT NULL DEFAULT 'IN_PROGRESS',
    response_status     INT,
    response_body       TEXT,
    created_at          TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at          TIMESTAMP NOT NULL,
    CONSTRAINT chk_idempotency_status CHECK (status IN ('IN_PROGRESS', 'COMPLETED')),
    CONSTRAINT chk_idempotency_response CHECK (
        status = 'IN_PROGRESS' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

CREATE INDEX idx_checkout_idempotency_expires_at ON checkout_idempotency (expires_at);

-- The original's outbox plus what the relay needs (ADR 0002): the topic and headers to
-- publish with, when the next attempt is due, and a lease so replicas never publish
-- the same row at once.
CREATE TABLE order_created_outbox (
    id              UUID PRIMARY KEY,
    aggregate_id    UUID NOT NULL,
    aggregate_type  VARCHAR(50) NOT NULL DEFAULT 'ORDER',
    event_type      VARCHAR(100) NOT NULL DEFAULT 'OrderCreatedEvent',
    payload         JSONB NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    published_at    TIMESTAMP,
    status          VARCHAR(20) NOT NULL DEFAULT 'PENDING',
    retry_count     INT NOT NULL DEFAULT 0,
    error_message   TEXT,
    topic           VARCHAR(255) NOT NULL,
    headers         JSONB NOT NULL DEFAULT '{}'::jsonb,
    next_attempt_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    locked_until    TIMESTAMP,
    CONSTRAINT chk_status CHECK (status IN ('PENDING', 'PUBLISHED', 'FAILED'))
);

CREATE INDEX idx_outbox_status_created ON order_created_outbox (status, created_at)
    WHERE status = 'PENDING';
CREATE INDEX idx_outbox_due ON order_created_outbox (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX idx_outbox_aggregate ON order_created_outbox (aggregate_id, aggregate_type);

-- Who may log in (POST /api/v1/auth/login); passwords are argon2id PHC strings.
CREATE TABLE managers (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    username      VARCHAR(100) NOT NULL,
    password_hash TEXT NOT NULL,
    roles         TEXT[] NOT NULL,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uk_manager_username UNIQUE (username)
);
