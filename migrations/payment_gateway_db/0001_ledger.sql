-- payment_gateway_db: the payment gateway's ledger (ADR 0007): one charge row per charge
-- Idempotency-Key and one refund row per refund Idempotency-Key, kept across restarts.
-- Table names carry the gateway_ prefix so that every database's migrations can be
-- applied to one scratch database (scripts/sqlx-prepare.sh) without colliding.
-- Every time stamp is UTC wall-clock time (TIMESTAMP WITHOUT TIME ZONE), as in
-- customer_db and order_db.

CREATE TABLE gateway_charges (
    id                      UUID PRIMARY KEY,
    -- The client's Idempotency-Key: a key is charged at most once, ever.
    idempotency_key         VARCHAR(255) NOT NULL,
    -- NULL only on a key voided by a refund before any charge request named an order;
    -- the first charge request with that key records its order here (and is declined).
    order_id                UUID,
    order_number            VARCHAR(100),
    -- 0 on a voided key until a charge request names the amount.
    amount                  NUMERIC(12, 2) NOT NULL CHECK (amount >= 0),
    currency                VARCHAR(3) NOT NULL,
    status                  VARCHAR(20) NOT NULL CHECK (status IN ('SUCCEEDED', 'DECLINED')),
    external_transaction_id VARCHAR(100),
    failure_reason          TEXT,
    -- Requests received with this key, replays included (the void of a refund is not one).
    request_count           BIGINT NOT NULL DEFAULT 1,
    created_at              TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT uk_gateway_charge_key UNIQUE (idempotency_key)
);

CREATE INDEX idx_gateway_charge_order ON gateway_charges (order_id);
CREATE INDEX idx_gateway_charge_created ON gateway_charges (created_at);

CREATE TABLE gateway_refunds (
    id              UUID PRIMARY KEY,
    -- The client's Idempotency-Key of the refund (the order service sends refund-<orderId>).
    idempotency_key VARCHAR(255) NOT NULL,
    -- The Idempotency-Key of the charge this refund is for.
    payment_key     VARCHAR(255) NOT NULL,
    -- NULL when nothing was charged under payment_key (NOTHING_CHARGED).
    charge_id       UUID REFERENCES gateway_charges (id),
    order_id        UUID,
    -- What was given back: 0 when nothing was charged.
    amount          NUMERIC(12, 2) NOT NULL CHECK (amount >= 0),
    currency        VARCHAR(3) NOT NULL,
    status          VARCHAR(20) NOT NULL CHECK (status IN ('REFUNDED', 'NOTHING_CHARGED')),
    reason          TEXT,
    -- Requests received with this key, replays included.
    request_count   BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT uk_gateway_refund_key UNIQUE (idempotency_key)
);

CREATE INDEX idx_gateway_refund_order ON gateway_refunds (order_id);
CREATE INDEX idx_gateway_refund_charge ON gateway_refunds (charge_id);
CREATE INDEX idx_gateway_refund_payment_key ON gateway_refunds (payment_key);
