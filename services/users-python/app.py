"""The users service again, in the tutorial's Python stack: FastAPI, asyncpg and OpenTelemetry
Python (the SDK, the OTLP exporter and the FastAPI instrumentation).

The same API as the Rust service in services/users, over the same database (which the Rust
service's migrations create: this one never migrates): GET /users/{id}, GET /users?ids=1,2,3,
/healthz and /readyz, with the same JSON and the same error shapes, and the workshop's
baggage faults (demo.delay_ms, demo.fail) when DEMO_FAULTS=on. It exists for exercise 15 of
docs/workshop.md: W3C Trace Context carries one trace across two languages.

Telemetry is configured only by the standard OTEL_* variables, read by the SDK itself:
OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the resource), OTEL_EXPORTER_OTLP_ENDPOINT
(OTLP/gRPC), OTEL_BSP_SCHEDULE_DELAY (the batch processor), OTEL_TRACES_SAMPLER(_ARG) (the
sampler; by default parent-based, always on) and OTEL_PROPAGATORS (by default W3C tracecontext
and baggage). Besides those: DATABASE_URL, LISTEN_ADDR (host:port, port 0 for any) and
DEMO_FAULTS, as the Rust services read them.

Run it: python app.py (with the packages of requirements.txt installed).
"""

import asyncio
import json
import os
import re
import socket
import sys
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import baggage, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException as StarletteHTTPException

VERSION = "0.1.0"
# The batch endpoint takes at most this many ids (orders asks for at most 50).
MAX_IDS = 100
# Longest delay a request may ask for with demo.delay_ms; more is capped to it.
MAX_DELAY_MS = 5000
I64_MAX = 9223372036854775807


def log(message, **fields):
    """One JSON line on stderr, like the Rust services' LOG_FORMAT=json."""
    print(json.dumps({"level": "INFO", "message": message, **fields}), file=sys.stderr, flush=True)


# --- 1. Telemetry: exporter -> batch processor -> provider (resource, sampler) ---------------
# Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and adds the SDK's
# own telemetry.sdk.* attributes; TracerProvider() reads OTEL_TRACES_SAMPLER(_ARG); the
# exporter reads OTEL_EXPORTER_OTLP_ENDPOINT; the processor reads OTEL_BSP_*.
provider = TracerProvider(resource=Resource.create({"service.version": VERSION}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("users-python", VERSION)


# --- 2. The database: one db-query client span per query --------------------------------------
class Db:
    def __init__(self, url):
        self.url = url
        parts = urlsplit(url)
        self.namespace = parts.path.lstrip("/") or "postgres"
        self.address = parts.hostname or "localhost"
        self.port = parts.port or 5432
        self.pool = None

    async def connect(self, within_s=60.0):
        waited = 0.0
        while True:
            try:
                self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=10)
                return
            except (OSError, asyncpg.PostgresError) as error:
                if waited >= within_s:
                    raise
                log("database not reachable yet", error=str(error))
                await asyncio.sleep(0.5)
                waited += 0.5

    async def query(self, operation, collection, text, *args, fetch="fetch"):
        """Runs `text` in a db-query span with the database semantic conventions, as
        shared/telemetry/src/db.rs does for the Rust services."""
        with tracer.start_as_current_span(
            "db-query",
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": self.namespace,
                "db.operation.name": operation,
                "db.collection.name": collection,
                "db.query.summary": f"{operation} {collection}",
                "db.query.text": text,
                "server.address": self.address,
                "server.port": self.port,
            },
        ) as span:
            try:
                return await getattr(self.pool, fetch)(text, *args)
            except asyncpg.PostgresError as error:
                code = getattr(error, "sqlstate", None) or "database"
                span.set_attribute("db.response.status_code", code)
                span.set_attribute("error.type", code)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                raise DbError("internal", 500, "internal database error") from error
            except (OSError, asyncpg.InterfaceError) as error:
                span.set_attribute("error.type", "io")
                span.set_status(Status(StatusCode.ERROR, str(error)))
                raise DbError("database_unavailable", 503, "database not reachable") from error


class AppError(Exception):
    """One error -> status + the JSON body every service answers with."""

    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


class DbError(AppError):
    pass


def error_response(status, code, message):
    if status >= 500:
        span = trace.get_current_span()
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, message))
        log(message, level="WARN", **{"error.type": code, "status": status})
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def parse_id(raw):
    """A positive 64-bit integer in ASCII digits, as service-kit's parse_id takes it."""
    if not re.fullmatch(r"[0-9]+", raw):
        return None
    value = int(raw)
    return value if 0 < value <= I64_MAX else None


# --- 3. The app ---------------------------------------------------------------------------------
db = Db(os.environ.get("DATABASE_URL", "postgres://postgres@localhost:5432/users"))
listen_addr = None  # host:port, once bound (main)
demo_faults = os.environ.get("DEMO_FAULTS", "off") == "on"


@asynccontextmanager
async def lifespan(_app):
    await db.connect()
    # Said once the database answers: whoever waits for this line can send requests.
    log("listening", addr=listen_addr)
    yield
    await db.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.exception_handler(AppError)
async def app_error(_request, error):
    return error_response(error.status, error.code, error.message)


@app.exception_handler(StarletteHTTPException)
async def http_error(request, error):
    if error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(405, "method_not_allowed", message)
    return error_response(404, "not_found", f"no route for {request.method} {request.url.path}")


@app.middleware("http")
async def traceresponse(request, call_next):
    """The answer names its trace (the `traceresponse` header, as the Rust services send)."""
    response = await call_next(request)
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        response.headers["traceresponse"] = (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        )
    return response


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/readyz")
async def readyz():
    try:
        await db.pool.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return error_response(503, "database_unavailable", "database not reachable")
    return {"status": "ready"}


@app.get("/users/{user_id}")
async def get_user(user_id: str):
    parsed = parse_id(user_id)
    if parsed is None:
        raise AppError(
            "invalid_id", 400, "id must be a positive 64-bit integer (1 to 9223372036854775807)"
        )
    # Business context on the server span itself, as the Rust service does.
    trace.get_current_span().set_attribute("user.id", parsed)
    if demo_faults:
        await apply_faults(parsed)
    rows = await db.query(
        "SELECT", "users", "SELECT id, name, email FROM users WHERE id = $1", parsed
    )
    if not rows:
        raise AppError("user_not_found", 404, f"user {parsed} not found")
    return dict(rows[0])


@app.get("/users")
async def get_users(request: Request):
    """GET /users?ids=1,2,3: the batched side of the N+1 lesson, one query for all."""
    raw = request.query_params.get("ids", "")
    ids = [parse_id(part.strip()) for part in raw.split(",")]
    if None in ids or not 1 <= len(ids) <= MAX_IDS:
        message = f"ids must be 1 to {MAX_IDS} positive 64-bit integers, comma-separated"
        raise AppError("invalid_ids", 400, message)
    trace.get_current_span().set_attribute("users.count", len(ids))
    rows = await db.query(
        "SELECT",
        "users",
        "SELECT id, name, email FROM users WHERE id = ANY($1) ORDER BY id",
        ids,
    )
    return [dict(row) for row in rows]


# --- 4. The workshop's faults, carried in W3C baggage (shared/service-kit/src/demo.rs) ----------
async def apply_faults(user_id):
    entries = baggage.get_all()
    delay = entries.get("demo.delay_ms")
    fail = entries.get("demo.fail")
    if delay is not None:
        delay = str(delay).strip()
        if not delay.isdigit():
            message = f"demo.delay_ms must be a whole number of milliseconds, not {delay!r}"
            raise AppError("invalid_baggage", 400, message)
    if fail is not None and str(fail).strip() not in ("users", "db"):
        raise AppError("invalid_baggage", 400, f"demo.fail must be users or db, not {fail!r}")
    if delay is not None:
        ms = min(int(delay), MAX_DELAY_MS)
        with tracer.start_as_current_span("demo-delay", attributes={"demo.delay_ms": ms}):
            await asyncio.sleep(ms / 1000)
    if fail is not None and str(fail).strip() == "users":
        message = "failure injected by baggage demo.fail=users"
        with tracer.start_as_current_span("demo-fault") as span:
            span.set_attribute("error.type", "demo_fault")
            span.set_status(Status(StatusCode.ERROR, message))
        raise AppError("demo_fault", 500, message)
    if fail is not None:
        await db.query(
            "SELECT", "users", "SELECT id, name, email FROM users WHERE id = $1 / 0", user_id
        )


# The server span of every request but the probes (untraced, as in the Rust services); no
# extra spans for the ASGI send/receive events, so the tree is the Rust service's.
FastAPIInstrumentor.instrument_app(
    app, excluded_urls="/healthz,/readyz", exclude_spans=["receive", "send"]
)


# --- 5. The lifecycle: bind, say where, serve until SIGTERM, flush ----------------------------
def main():
    host, _, port = os.environ.get("LISTEN_ADDR", "0.0.0.0:8081").rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    global listen_addr
    bound_host, bound_port = sock.getsockname()
    listen_addr = f"{bound_host}:{bound_port}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        # The spans of the last requests are exported before the process ends.
        provider.shutdown()
        log("stopped")


if __name__ == "__main__":
    main()
