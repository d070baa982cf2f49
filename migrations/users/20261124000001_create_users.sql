CREATE TABLE users (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Deterministic seed: workshop material names these ids.
INSERT INTO users (id, name, email)
SELECT n, 'user-' || n, 'user-' || n || '@example.com'
FROM generate_series(1, 1000) AS n;
