"""Which deliveries an alert change makes: one per person told and channel that reaches them,
each due now or at the end of its channel's quiet hours. Pure: the use case feeds it the
directory and stores what it returns (see docs/architecture.md, notify)."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.notify.policy import Policy
from services.notify.staff import Directory, resolve
from shared.contracts import AlertEvent

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


def plan(event: AlertEvent, directory: Directory, policy: Policy, channels: tuple[str, ...],
         now: datetime, zone: ZoneInfo) -> list[Planned]:
    """The deliveries of one alert change. `channels` are those this deployment can send by.
    Roles the policy names that find nobody (not even a fallback) leave one failed record, so
    that the alert shows nobody was told; a person with no address on any channel likewise."""
    roles = policy.roles_for(event.kind, event.change)
    if not roles:
        return []
    at = event.at.astimezone(zone).time().replace(tzinfo=None)
    told = resolve(roles, policy.fallback, directory, at)
    if not told:
        return [Planned(NOBODY, "", "/".join(roles), NO_CHANNEL, now,
                        failed=f"nobody to tell: no {' or '.join(roles)} on record")]
    out = []
    usable = [c for c in policy.channels if c in channels]
    for person, role in told:
        reachable = [c for c in usable if person.address(c)]
        out += [Planned(person.code, person.name, role, channel,
                        policy.first_attempt_at(channel, now, zone)) for channel in reachable]
        if not reachable:
            out.append(Planned(person.code, person.name, role, NO_CHANNEL, now,
                               failed="no address on any configured channel"))
    return out
