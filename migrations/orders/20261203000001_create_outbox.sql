-- New orders (POST /orders) take ids after the seed's.
CREATE SEQUENCE orders_id_seq OWNED BY orders.id;
SELECT setval('orders_id_seq', GREATEST((SELECT max(id) FROM orders), 1));
ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq');

-- The transactional outbox: a message is inserted in the transaction that inserts its order,
-- so there is never an order without its message nor a message without its order. The
-- worker (orders-worker) claims pending messages with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    destination  TEXT NOT NULL,
    payload      JSONB NOT NULL,
    -- The W3C context captured in the producer span: traceparent, tracestate, baggage.
    headers      JSONB NOT NULL DEFAULT '{}',
    attempts     INT NOT NULL DEFAULT 0,
    available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ,
    -- Set when a message failed its last allowed attempt: never claimed again.
    parked_at    TIMESTAMPTZ,
    last_error   TEXT
);

CREATE INDEX outbox_pending_idx ON outbox (available_at, id)
    WHERE processed_at IS NULL AND parked_at IS NULL;

-- What processing a message does: the confirmation "sent" for an order. One row per
-- processing, so a message processed twice shows as two rows.
CREATE TABLE order_confirmations (
    id         BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES outbox (id),
    order_id   BIGINT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
