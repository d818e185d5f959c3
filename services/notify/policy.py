"""What notify sends, to whom and when, read from a data file (services/notify/data/notify.toml,
or ROLLCALL_NOTIFY_CONFIG): who is told of each alert change and of each scheduled edition, who
stands in for a role that finds nobody, the channels, quiet hours and retries. This module
parses, checks and answers questions about the policy; it holds none of it."""

import tomllib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

from shared.contracts import AlertKind
from shared.hierarchy import Level

DEFAULT_PATH = Path(__file__).parent / "data" / "notify.toml"
ROLES = ("on_duty", "leader", "node_in_charge", "node_reporter", "unit_in_charge",
         "unit_reporter")
CHANNELS = ("sms", "email", "wecom", "dingtalk")
KINDS = get_args(AlertKind)  # the alert kinds of the contract, one list
CHANGES = ("opened", "warned", "acknowledged", "escalated", "units_exempted", "closed")


@dataclass(frozen=True)
class Policy:
    tell: dict[tuple[str, str], tuple[str, ...]]  # (alert kind, change) -> roles
    fallback: dict[str, tuple[str, ...]]
    channels: tuple[str, ...]
    quiet_hours: dict[str, tuple[time, time]]
    attempts: int
    first_delay: timedelta
    max_delay: timedelta
    lease: timedelta
    digest_levels: tuple[Level, ...]  # 漏报 digests go to the on-duty of these levels
    digest_role: str
    digest_wait: timedelta
    reminder_before: timedelta | None  # None: no reminders
    reminder_roles: tuple[str, ...]
    cancel_when: tuple[str, ...]  # alert changes that cancel what still waits to tell of it
    # Who hears that a scheduled edition of a node's summary is out: that node's roster.
    edition_roles: tuple[str, ...] = ("on_duty",)

    def roles_for(self, kind: str, change: str) -> tuple[str, ...]:
        return self.tell.get((kind, change), ())

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When a delivery that has failed `attempts` times is tried again: the delay doubles
        each time up to the maximum; None once every attempt is spent."""
        if attempts >= self.attempts:
            return None
        delay = min(self.first_delay * 2 ** max(attempts - 1, 0), self.max_delay)
        return now + delay

    def first_attempt_at(self, channel: str, now: datetime, zone: ZoneInfo) -> datetime:
        """Now, or the end of the channel's quiet hours when now falls inside them (a window
        may span midnight: 22:00 to 07:00)."""
        window = self.quiet_hours.get(channel)
        if window is None:
            return now
        start, end = window
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
        if not inside:
            return now
        until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if until <= local:
            until += timedelta(days=1)
        return until


class PolicyError(ValueError):
    """The policy file is wrong: the service refuses to start rather than tell nobody."""


def _roles(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise PolicyError(f"{where}: a list of roles")
    unknown = [r for r in value if r not in ROLES]
    if unknown:
        raise PolicyError(f"{where}: unknown role {', '.join(unknown)} (known: "
                          f"{', '.join(ROLES)})")
    return tuple(value)


def _clock(value: object, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where}: not a time of day (HH:MM): {value!r}") from None


def load_policy(path: Path | None = None) -> Policy:
    data = tomllib.loads((path or DEFAULT_PATH).read_text(encoding="utf-8"))
    tell: dict[tuple[str, str], tuple[str, ...]] = {}
    for kind, changes in data.get("tell", {}).items():
        if kind not in KINDS:
            raise PolicyError(f"tell.{kind}: not an alert kind ({', '.join(KINDS)})")
        for change, roles in changes.items():
            if change not in CHANGES:
                raise PolicyError(f"tell.{kind}.{change}: not an alert change "
                                  f"({', '.join(CHANGES)})")
            tell[(kind, change)] = _roles(roles, f"tell.{kind}.{change}")
    fallback = {}
    for role, others in data.get("fallback", {}).items():
        _roles([role], "fallback")
        fallback[role] = _roles(others, f"fallback.{role}")
    channels = tuple(data.get("channels", {}).get("enabled", CHANNELS))
    if unknown := [c for c in channels if c not in CHANNELS]:
        raise PolicyError(f"channels.enabled: unknown channel {', '.join(unknown)}")
    quiet = {}
    for channel, window in data.get("quiet_hours", {}).items():
        if channel not in CHANNELS:
            raise PolicyError(f"quiet_hours.{channel}: not a channel ({', '.join(CHANNELS)})")
        if not isinstance(window, list) or len(window) != 2:
            raise PolicyError(f"quiet_hours.{channel}: [\"from\", \"to\"]")
        quiet[channel] = (_clock(window[0], f"quiet_hours.{channel}"),
                          _clock(window[1], f"quiet_hours.{channel}"))
    retry = data.get("retry", {})
    digest = data.get("missing_report", {})
    reminder = data.get("reminder", {})
    edition = data.get("edition", {})
    levels = []
    for name in digest.get("digest_levels", []):
        if str(name).upper() not in Level.__members__:
            raise PolicyError(f"missing_report.digest_levels: not a level: {name!r}")
        levels.append(Level[str(name).upper()])
    policy = Policy(tell=tell, fallback=fallback, channels=channels, quiet_hours=quiet,
                    attempts=int(retry.get("attempts", 5)),
                    first_delay=timedelta(seconds=float(retry.get("first_delay_s", 30))),
                    max_delay=timedelta(seconds=float(retry.get("max_delay_s", 900))),
                    lease=timedelta(seconds=float(retry.get("lease_s", 120))),
                    digest_levels=tuple(levels),
                    digest_role=_roles([digest.get("digest_role", "on_duty")],
                                       "missing_report.digest_role")[0],
                    digest_wait=timedelta(seconds=float(digest.get("digest_wait_s", 60))),
                    reminder_before=(timedelta(minutes=float(reminder["before_cutoff_min"]))
                                     if "before_cutoff_min" in reminder else None),
                    reminder_roles=_roles(reminder.get("roles", ["unit_reporter"]),
                                          "reminder.roles"),
                    cancel_when=tuple(retry.get("cancel_when", ())),
                    edition_roles=_roles(edition.get("roles", ["on_duty"]), "edition.roles"))
    if unknown := [c for c in policy.cancel_when if c not in CHANGES]:
        raise PolicyError(f"retry.cancel_when: not an alert change: {', '.join(unknown)}")
    if policy.attempts < 1:
        raise PolicyError("retry.attempts: at least 1")
    return policy
