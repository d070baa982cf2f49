CREATE TABLE orders (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    item        TEXT NOT NULL,
    quantity    INT NOT NULL CHECK (quantity > 0),
    total_cents BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- No foreign key to users: they live in the users service's own database.
CREATE INDEX orders_user_id_idx ON orders (user_id);

-- Deterministic seed: workshop material names these ids.
INSERT INTO orders (id, user_id, item, quantity, total_cents)
SELECT n, ((n - 1) % 1000) + 1, 'item-' || n, (n % 5) + 1, n * 100
FROM generate_series(1, 10000) AS n;
