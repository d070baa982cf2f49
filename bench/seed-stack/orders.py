"""The tutorial's orders service: GET /orders/{order_id}, the order from the orders
database, then its user from the users service, answered together.

Its spans, as the tutorial draws them: `GET /orders/{order_id}` (server, FastAPI's
instrumentation) > `fetch-order` (order.id) > the asyncpg query, and `enrich-order`
(user.id) > `GET` (httpx's client span) > users' own spans.
"""

import os
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from common import connect, error, rfc3339

# services/orders/src/db.rs, SELECT_ORDER.
SELECT_ORDER = (
    "SELECT id, user_id, item, quantity, total_cents, created_at FROM orders WHERE id = $1"
)

tracer = trace.get_tracer("orders")


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.db = await connect()
    # One client per worker, kept for its connection pool, as ours keeps one.
    app.state.users = httpx.AsyncClient(
        base_url=os.environ.get("USERS_URL", "http://localhost:8081"),
        timeout=int(os.environ.get("USERS_TIMEOUT_MS", "2000")) / 1000,
    )
    yield
    await app.state.users.aclose()
    await app.state.db.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz():
    return {"status": "ready"}


@app.get("/orders/{order_id}")
async def get_order(order_id: int):
    with tracer.start_as_current_span("fetch-order", attributes={"order.id": order_id}):
        row = await app.state.db.fetchrow(SELECT_ORDER, order_id)
        if row is None:
            return error(404, "order_not_found", f"order {order_id} not found")
        order = dict(row)
        order["created_at"] = rfc3339(order["created_at"])
        with tracer.start_as_current_span(
            "enrich-order", attributes={"user.id": order["user_id"]}
        ) as span:
            answer = await app.state.users.get(f"/users/{order['user_id']}")
            if answer.status_code == 404:
                user = None
            elif answer.status_code == 200:
                user = answer.json()
            else:
                return error(502, "users_unavailable", f"users service answered {answer.status_code}")
            span.set_attribute("user.found", user is not None)
        return {"order": order, "user": user}
