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
from collections.abc import AsyncIterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A page that stops reading (a laptop put to sleep) must not hold memory: past this many
# waiting events it gets a `resync` and its queue is emptied.
QUEUE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # "rollup" | "alert" | "resync"
    node: str
    data: dict

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
        return LiveEvent("rollup", node, {"node": node, "day": body.get("day")})
    if subject.startswith("alert.") and body.get("alert_id") and body.get("node"):
        keep = ("change", "alert_id", "kind", "node", "unit", "status", "level", "responsible",
                "deadline", "late", "at", "actor")
        return LiveEvent("alert", str(body["node"]), {k: body.get(k) for k in keep})
    return None


def visible(scope: str, event: LiveEvent) -> bool:
    """An operator sees their node's subtree and nothing else. An escalated alert reaches the
    level above because its node lies in that level's subtree too."""
    return event.kind in ("resync", "bye") or event.node.startswith(scope)


class Hub:
    """Fans events out to the pages connected to this console process."""

    def __init__(self) -> None:
        self._queues: dict[asyncio.Queue[LiveEvent], str] = {}
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
                queue.put_nowait(LiveEvent("resync", scope, {}))
                continue
            queue.put_nowait(event)
            self.delivered += 1

    @contextlib.asynccontextmanager
    async def listen(self, scope: str) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._queues[queue] = scope
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


async def stream(hub: Hub, scope: str, closed, heartbeat_s: float = 15.0
                 ) -> AsyncIterator[str]:
    """SSE text for one page: a `hello`, then its events, with comments to keep proxies open."""
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
            yield event.sse()
