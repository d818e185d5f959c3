"""Which deliveries an alert change (or a digest) makes: one per person told and channel that
reaches them, each due now or at the end of its channel's quiet hours. Pure: the use case
feeds it the directory and stores what it returns (see docs/architecture.md, notify)."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notify.policy import Policy
from services.notify.staff import Directory, resolve

NOBODY = "-"  # the person of the record that says nobody could be told
NO_CHANNEL = "none"


@dataclass(frozen=True, slots=True)
class Planned:
    person: str
    person_name: str
    role: str
    channel: str
    due: datetime
    failed: str | None = None  # recorded as failed at once, with this reason


def plan(roles: tuple[str, ...], directory: Directory, policy: Policy,
         channels: tuple[str, ...], at: time, now: datetime, zone: ZoneInfo,
         hold: timedelta = timedelta(0)) -> list[Planned]:
    """The deliveries that tell `roles` (at the local time `at`, for the roster), by the
    channels this deployment can send by; each due after `hold` (a digest's collecting time)
    and out of its channel's quiet hours. Roles that find nobody, not even by a fallback, leave
    one failed record, so that the alert shows nobody was told; a person with no address on
    any channel likewise."""
    if not roles:
        return []
    told = resolve(roles, policy.fallback, directory, at)
    if not told:
        return [Planned(NOBODY, "", "/".join(roles), NO_CHANNEL, now,
                        failed=f"nobody to tell: no {' or '.join(roles)} on record")]
    out = []
    usable = [c for c in policy.channels if c in channels]
    for person, role in told:
        reachable = [c for c in usable if person.address(c)]
        out += [Planned(person.code, person.name, role, channel,
                        policy.first_attempt_at(channel, now + hold, zone))
                for channel in reachable]
        if not reachable:
            out.append(Planned(person.code, person.name, role, NO_CHANNEL, now,
                               failed="no address on any configured channel"))
    return out
