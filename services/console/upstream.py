"""The other services, over HTTP: the console never reads their tables. Each call carries the
operator's own bearer token, so every service applies its own checks as well as ours."""

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    next_cursor: str | None = None  # a list with more pages: where the next one starts

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class UpstreamDown(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


def base_urls(settings: Settings) -> dict[str, str]:
    local = f"http://{settings.http_host}"
    return {
        "ingest": settings.console_ingest_url or f"{local}:{settings.ingest_port}",
        "aggregate": settings.console_aggregate_url or f"{local}:{settings.aggregate_port}",
        "alerts": settings.console_alerts_url or f"{local}:{settings.alerts_port}",
        "notify": settings.console_notify_url or f"{local}:{settings.notify_port}",
        "ledger": settings.console_ledger_url or f"{local}:{settings.ledger_port}",
        "signoff": settings.console_signoff_url or f"{local}:{settings.signoff_port}",
    }


class Upstream:
    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        self.urls = base_urls(settings)
        self._client = httpx.AsyncClient(timeout=timeout_s,
                                         limits=httpx.Limits(max_connections=50))

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, service: str, method: str, path: str, token: str,
                   params: dict | None = None, json: Any = None) -> Answer:
        headers = {"Authorization": f"Bearer {token}"}
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._client.request(method, self.urls[service] + path,
                                                  headers=headers, params=params, json=json)
        except httpx.HTTPError as exc:
            log.warning("upstream call failed", extra={
                "upstream": service, "path": path, "error": repr(exc)})
            raise UpstreamDown(service, type(exc).__name__) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        return Answer(response.status_code, body, response.headers.get("Next-Cursor"))

    async def get(self, service: str, path: str, token: str, **params: Any) -> Answer:
        return await self.call(service, "GET", path, token, params=params)

    async def post(self, service: str, path: str, token: str, json: Any = None) -> Answer:
        return await self.call(service, "POST", path, token, json=json)

    async def put(self, service: str, path: str, token: str, json: Any = None) -> Answer:
        return await self.call(service, "PUT", path, token, json=json)
