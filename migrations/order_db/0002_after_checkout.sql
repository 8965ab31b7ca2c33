-- order_db 0002 (ADR 0007): payments can be refunded.
-- A refund is requested when a paid order is cancelled, when a charge lands after its
-- order was cancelled, and when a payment reaches its deadline unanswered (the refund
-- by key then voids the key if nothing was charged). The refund worker asks the
-- gateway until it answers; nothing here uses the new enum value, which PostgreSQL
-- forbids in the transaction that adds it.

ALTER TYPE payment_status ADD VALUE IF NOT EXISTS 'REFUNDED';

ALTER TABLE payment_transactions
    -- When a refund was asked for; NULL: none wanted.
    ADD COLUMN refund_requested_at    TIMESTAMP,
    -- Why (the cancel reason, the payment deadline, a charge after the cancel).
    ADD COLUMN refund_reason          TEXT,
    -- When the gateway answered the refund: REFUNDED (status becomes REFUNDED) or
    -- NOTHING_CHARGED (the status stays as it was). NULL while it is pending.
    ADD COLUMN refunded_at            TIMESTAMP,
    -- The gateway's refund id.
    ADD COLUMN refund_id              VARCHAR(100),
    -- What the gateway gave back (0 when nothing had been charged).
    ADD COLUMN refunded_amount        DECIMAL(10, 2),
    -- Refund calls made so far that got no answer.
    ADD COLUMN refund_attempt_count   INTEGER NOT NULL DEFAULT 0,
    -- When the refund worker may ask next; moved ahead while a worker holds it.
    ADD COLUMN refund_next_attempt_at TIMESTAMP,
    -- The last error of a refund call, for operators.
    ADD COLUMN refund_last_error      TEXT;

CREATE INDEX idx_payment_refund_due ON payment_transactions (refund_next_attempt_at)
    WHERE refund_requested_at IS NOT NULL AND refunded_at IS NULL;
