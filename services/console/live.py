"""Live updates for the pages: rollup hints and alert events from NATS, fanned out to each open
page as server-sent events, each page seeing only its operator's area.

The console subscribes on core NATS (`rollup.updated.>` and `alert.>`): a page that misses a
hint (it was reconnecting) fetches everything again when it comes back, so nothing needs to be
stored for it. Alert events are published into JetStream, which core subscribers receive too.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# A page that stops reading (a laptop put to sleep) must not hold memory: past this many
# waiting events it gets a `resync` and its queue is emptied.
QUEUE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # "rollup" | "alert" | "resync"
    node: str
    data: dict
    # A rollup hint's sectors (None: every sector's figures may have moved).
    sectors: frozenset[str] | None = field(default=None, compare=False)

    def sse(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


def read(subject: str, payload: bytes) -> LiveEvent | None:
    """The event a NATS message means for the pages, or None for what they need not see."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if subject.startswith("rollup.updated."):
        node = str(body.get("node") or subject.removeprefix("rollup.updated."))
        sectors = body.get("sectors")
        named = frozenset(map(str, sectors)) if isinstance(sectors, list) else None
        data = {"node": node, "day": body.get("day")}
        if named is not None:
            data["sectors"] = sorted(named)
        return LiveEvent("rollup", node, data, named)
    if subject.startswith("alert.") and body.get("alert_id") and body.get("node"):
        keep = ("change", "alert_id", "kind", "node", "unit", "status", "level", "responsible",
                "deadline", "late", "at", "actor")
        return LiveEvent("alert", str(body["node"]), {k: body.get(k) for k in keep})
    return None


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a page is for: an operator's node and, for a sector operator, its sector."""

    scope: str
    sector: str | None = None


def visible(audience: Audience | str, event: LiveEvent) -> bool:
    """An operator sees their node's subtree and nothing else. An escalated alert reaches the
    level above because its node lies in that level's subtree too. A sector operator's page
    gets the rollup hints that name its sector (its units' reports and cutoffs) or none;
    alert events it gets only once the alerts service says the alert is its sector's
    (`stream`'s `allow`)."""
    if isinstance(audience, str):
        audience = Audience(audience)
    if event.kind in ("resync", "bye"):
        return True
    if not event.node.startswith(audience.scope):
        return False
    if audience.sector is not None and event.kind == "rollup" and event.sectors is not None:
        return audience.sector in event.sectors
    return True


class Hub:
    """Fans events out to the pages connected to this console process."""

    def __init__(self) -> None:
        self._queues: dict[asyncio.Queue[LiveEvent], Audience] = {}
        self.delivered = 0

    @property
    def pages(self) -> int:
        return len(self._queues)

    def publish(self, event: LiveEvent) -> None:
        for queue, scope in list(self._queues.items()):
            if not visible(scope, event):
                continue
            if queue.qsize() >= QUEUE_LIMIT:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LiveEvent("resync", scope.scope, {}))
                continue
            queue.put_nowait(event)
            self.delivered += 1

    @contextlib.asynccontextmanager
    async def listen(self, scope: Audience | str) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._queues[queue] = scope if isinstance(scope, Audience) else Audience(scope)
        try:
            yield queue
        finally:
            self._queues.pop(queue, None)

    def close(self) -> None:
        """Ends every page's stream (the process is stopping); pages reconnect elsewhere."""
        for queue in list(self._queues):
            queue.put_nowait(LiveEvent("bye", "", {}))

    async def on_message(self, msg) -> None:  # nats-py callback
        event = read(msg.subject, msg.data)
        if event is not None:
            self.publish(event)


Allow = Callable[[LiveEvent], Awaitable[bool]]


async def stream(hub: Hub, scope: Audience | str, closed, heartbeat_s: float = 15.0,
                 allow: Allow | None = None) -> AsyncIterator[str]:
    """SSE text for one page: a `hello`, then its events, with comments to keep proxies open.
    `allow`, when given, is asked about each alert event (a sector operator's page: whether
    the alert concerns its sector)."""
    async with hub.listen(scope) as queue:
        yield "retry: 3000\nevent: hello\ndata: {}\n\n"
        while not await closed():
            try:
                event = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event.kind == "bye":
                return
            if allow is not None and event.kind == "alert" and not await allow(event):
                continue
            yield event.sse()
