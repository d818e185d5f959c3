"""Liveness and readiness for every service: ready means NATS and the database answer."""

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy import text


def _broker_connected(request: Request) -> bool:
    connection = request.app.state.broker._connection
    return bool(connection and connection.is_connected)


def health_router(nats_connected: Callable[[Request], bool] = _broker_connected) -> APIRouter:
    """`nats_connected` tells whether the service's NATS connection is up (its broker's by
    default; a service with a plain nats-py connection passes its own check)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    async def ready(request: Request, response: Response) -> dict[str, str]:
        checks = {"nats": "ok" if nats_connected(request) else "down"}
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["database"] = f"down: {type(exc).__name__}"
        if any(v != "ok" for v in checks.values()):
            response.status_code = 503
        return checks

    return router
