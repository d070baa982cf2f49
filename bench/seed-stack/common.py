"""What both apps share: the database pool, the error answer, and chrono's date format.

Configured like our services: DATABASE_URL for the database, OTEL_* for everything about
telemetry (read by opentelemetry-instrument, not here).
"""

import os
from datetime import datetime, timezone

import asyncpg
from fastapi.responses import JSONResponse

# Per worker: two workers hold 10 connections, as one of our services does
# (DATABASE_MAX_CONNECTIONS defaults to 10).
POOL_SIZE = 5


async def connect() -> asyncpg.Pool:
    return await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=1, max_size=POOL_SIZE
    )


def error(status: int, code: str, message: str) -> JSONResponse:
    """The error body our services answer (service_kit::json_error)."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def rfc3339(moment: datetime) -> str:
    """A timestamp as chrono serialises it: UTC with `Z`, and 0, 3 or 6 digits of a second,
    whichever shows it exactly (Postgres keeps microseconds)."""
    moment = moment.astimezone(timezone.utc)
    micros = moment.microsecond
    if micros == 0:
        fraction = ""
    elif micros % 1000 == 0:
        fraction = f".{micros // 1000:03d}"
    else:
        fraction = f".{micros:06d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
