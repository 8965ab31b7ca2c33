-- The W3C traceparent of the request that asked for a refund (the cancel), so the
-- refund worker's later call to the gateway continues that request's trace.
ALTER TABLE payment_transactions ADD COLUMN refund_traceparent TEXT;
