"""Which alerts a sector operator sees, asked of the alerts service with the operator's own
token: notify keeps each alert's node, not the units it concerns, which decide the sector line
(docs/architecture.md, "The sector line")."""

import uuid
from collections.abc import Sequence

import httpx

from shared.refusals import refuse


class AlertsSight:
    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self._url = base_url.rstrip("/") + "/v1/alerts/seen"
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def seen(self, authorization: str, alert_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `alert_ids` the token's holder sees; alerts not answering is a 502."""
        try:
            answer = await self._client.get(
                self._url, params={"alert": [str(a) for a in alert_ids]},
                headers={"Authorization": authorization})
        except httpx.HTTPError:
            raise refuse("unavailable", "alert", service="alerts") from None
        if answer.status_code != 200:
            raise refuse("unavailable", "alert", service="alerts")
        return {uuid.UUID(a) for a in answer.json()}
