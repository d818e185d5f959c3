"""When PostgreSQL is down, restarting or cut off, an HTTP call answers 503 with Retry-After and
the reason in both languages: never a 500, never a hang. Nothing was stored, so the caller sends
the same request again later (a report or case with its id changes nothing on a repeat).

`install(app)` registers the handler for the errors a lost database raises (connection refused,
the server starting up or shutting down, a connection terminated mid-transaction, a pool or
query timeout). Any other database error is a bug and stays a 500."""

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from shared.errors import FieldError

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5

UNAVAILABLE = FieldError(
    "database", "database_unavailable", "数据库暂时不可用,未保存任何内容,请稍后重试",
    "the database is unavailable right now; nothing was stored, retry later")

# asyncpg's: a connection lost or refused, the server starting, shutting down, or terminating
# the backend (class 57: operator intervention), a connection closed under a query.
_LOST = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
         asyncpg.exceptions.OperatorInterventionError, sa_exc.TimeoutError)


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether an error means the database could not be reached (rather than a bad query)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _LOST):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse({"detail": "unavailable", "errors": [UNAVAILABLE.as_dict()]},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    for kind in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, asyncpg.PostgresError,
                 asyncpg.InterfaceError):
        app.add_exception_handler(kind, on_database_error)
