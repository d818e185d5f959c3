"""Delivery receipts: the SMS gateway posts, for a message it took, whether it reached the
phone. "Sent" (the gateway's 2xx) becomes "delivered", or "failed" with the gateway's code,
once: a receipt posted again changes nothing. Every receipt is kept (`notify.receipts`), one
that names no message notify sent too, with its refusal; none keeps a phone number (the
gateway's other fields are not read). See docs/architecture.md, notify."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import store
from services.notify.metrics import DELIVERIES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str  # the id the gateway answered the send with
    status: str  # delivered | failed
    at: datetime | None = None  # when the gateway says it happened
    error: str | None = None  # the gateway's code for a failure


async def take_receipts(session: AsyncSession, channel: str, receipts: Sequence[Receipt],
                        now: datetime) -> list[str]:
    """Each receipt's result, in order: applied, duplicate or unknown_message."""
    results = []
    for receipt in receipts:
        result, delivery_id = await store.apply_receipt(
            session, channel, receipt.message_id, receipt.status, receipt.error, receipt.at,
            now)
        results.append(result)
        if result == "applied":
            DELIVERIES.labels(channel, "delivered" if receipt.status == "delivered"
                              else "undelivered").inc()
        # The gateway's id and what became of it: nothing that names or reaches a person.
        log.log(logging.WARNING if result == "unknown_message" else logging.INFO,
                "delivery receipt %s", result,
                extra={"channel": channel, "message_id": receipt.message_id,
                       "status": receipt.status, "delivery": delivery_id})
    return results
