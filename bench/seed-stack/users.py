"""The tutorial's users service: GET /users/{user_id}, one query.

Its spans: `GET /users/{user_id}` (server, FastAPI's instrumentation) with the asyncpg
query's span under it; `user.id` goes on the server span, as ours does.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry import trace

from common import connect, error

# services/users/src/db.rs, SELECT_USER.
SELECT_USER = "SELECT id, name, email FROM users WHERE id = $1"


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.db = await connect()
    yield
    await app.state.db.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz():
    return {"status": "ready"}


@app.get("/users/{user_id}")
async def get_user(user_id: int):
    trace.get_current_span().set_attribute("user.id", user_id)
    row = await app.state.db.fetchrow(SELECT_USER, user_id)
    if row is None:
        return error(404, "user_not_found", f"user {user_id} not found")
    return dict(row)
