"""Liveness and readiness for every service: ready means NATS and the database answer."""

from fastapi import APIRouter, Request, Response
from sqlalchemy import text


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    async def ready(request: Request, response: Response) -> dict[str, str]:
        state = request.app.state
        checks = {"nats": "ok" if state.broker._connection and state.broker._connection.is_connected
                  else "down"}
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["database"] = f"down: {type(exc).__name__}"
        if any(v != "ok" for v in checks.values()):
            response.status_code = 503
        return checks

    return router
