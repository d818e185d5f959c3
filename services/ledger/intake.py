"""What a registration must be, whether it comes as JSON or as a CSV row, and what a correction
of one may change: every problem named by its field, a stable code and the reason in Chinese
and English. No SQL, NATS or HTTP."""

from dataclasses import dataclass
from datetime import date

from services.ledger.regimes import Regimes
from services.ledger.schemas import Registration, TeamMember
from shared.errors import FieldError
from shared.hierarchy import Level, level_of


def problem(field: str, code: str, zh: str, en: str) -> FieldError:
    return FieldError(field, code, zh, en)


def check_registration(r: Registration, regimes: Regimes, villages: dict[str, str],
                       area: str, today: date) -> list[FieldError]:
    """A registration's problems (none: it may be recorded). `villages` are the registry's
    nodes; `area` the operator's node."""
    out = []
    try:
        is_village = level_of(r.village) == Level.VILLAGE
    except ValueError:
        is_village = False
    if not is_village or r.village not in villages:
        out.append(problem("village", "unknown_village", f"没有村(居) {r.village}",
                           f"no village {r.village}"))
    elif not r.village.startswith(area):
        out.append(problem("village", "outside_area", f"{r.village} 不在此凭证的辖区内",
                           f"{r.village} is outside this credential's area"))
    if r.category not in regimes.categories:
        out.append(problem("category", "unknown_category", f"没有人员类别 {r.category}",
                           f"no category {r.category} (known: "
                           f"{', '.join(regimes.categories)})"))
    if r.regime not in regimes.regimes:
        out.append(problem("regime", "unknown_regime", f"没有管控方式 {r.regime}",
                           f"no regime {r.regime} (known: {', '.join(regimes.regimes)})"))
    elif regimes.needs_site(r.regime) and not (r.site or "").strip():
        out.append(problem("site", "site_required", "集中隔离须写明隔离点",
                           "central isolation names its site"))
    if r.start_day > today:
        out.append(problem("start_day", "future_day", "开始日期不能晚于今天",
                           "the start day cannot be after today"))
    return out + check_team(r.team, regimes)


def check_team(team: list[TeamMember], regimes: Regimes) -> list[FieldError]:
    """A 包保 team: at most `team.max_members`, each of a known role."""
    out = []
    if len(team) > regimes.team_max:
        out.append(problem("team", "team_too_large", f"包保人员最多 {regimes.team_max} 名",
                           f"a team has at most {regimes.team_max} members"))
    for i, member in enumerate(team):
        if member.role not in regimes.team_roles:
            out.append(problem(f"team[{i}].role", "unknown_role", f"没有包保角色 {member.role}",
                               f"no team role {member.role} (known: "
                               f"{', '.join(regimes.team_roles)})"))
    return out


IDENTITY = ("name", "contact")  # in ledger.identities; the rest is the file's row
CORRECTABLE = ("name", "contact", "category", "regime", "site", "start_day")
REPLANS = ("regime", "start_day")  # what is due follows from them (plan.countdowns)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a file already holds that a correction must not contradict."""

    released_on: date | None  # the first phase release recorded
    closed: bool
    first_recorded: date | None  # the earliest day of a test or a sign-off


def check_correction(given: dict, before: dict, recorded: Recorded, regimes: Regimes,
                     today: date) -> tuple[dict, list[FieldError], list[FieldError]]:
    """The fields a correction changes ({field: (before, after)}, those given equal to what is
    stored left out), its problems (422: never allowed) and its conflicts with what the file
    holds (409: not any more)."""
    problems, conflicts = [], []
    if not str(given.get("reason") or "").strip():
        problems.append(problem("reason", "reason_required", "须说明更正原因",
                                "a correction says why"))
    if "village" in given:
        problems.append(problem("village", "not_correctable",
                                "村(居)不能更正:预警和人数已按原村上报;请销账后在正确的村重新登记",
                                "the village cannot be corrected: its alerts and headcounts "
                                "were announced there; close the file and register the person "
                                "in the right village"))
    after = {k: v.strip() if isinstance(v, str) else v
             for k, v in given.items() if k in CORRECTABLE}
    for field in ("contact", "site"):
        if field in after and not after[field]:
            after[field] = None  # cleared
    for field in ("name", "category", "regime", "start_day"):
        if field in after and not after[field]:
            problems.append(problem(field, "required", f"{field} 不能为空",
                                    f"{field} cannot be empty"))
            del after[field]
    changes = {k: (before[k], v) for k, v in after.items() if v != before[k]}
    if not changes and not problems:
        problems.append(problem("fields", "nothing_changed", "没有要更正的内容",
                                "nothing differs from the file"))
    new = {**before, **{k: v for k, (_, v) in changes.items()}}
    if "category" in changes and new["category"] not in regimes.categories:
        problems.append(problem("category", "unknown_category", f"没有人员类别 {new['category']}",
                                f"no category {new['category']} (known: "
                                f"{', '.join(regimes.categories)})"))
    if "regime" in changes and new["regime"] not in regimes.regimes:
        problems.append(problem("regime", "unknown_regime", f"没有管控方式 {new['regime']}",
                                f"no regime {new['regime']} (known: "
                                f"{', '.join(regimes.regimes)})"))
    elif ({"regime", "site"} & changes.keys() and regimes.needs_site(new["regime"])
          and not new["site"]):
        problems.append(problem("site", "site_required", "集中隔离须写明隔离点",
                                "central isolation names its site"))
    if "start_day" in changes and new["start_day"] > today:
        problems.append(problem("start_day", "future_day", "开始日期不能晚于今天",
                                "the start day cannot be after today"))
    for field in REPLANS:
        if field not in changes:
            continue
        if recorded.released_on is not None or recorded.closed:
            # The phases released were those of this regime, from this start.
            conflicts.append(problem(field, "released",
                                     f"已解除或销账,{field} 不能再更正",
                                     f"{field} cannot be corrected once a release or the "
                                     f"file's closing is recorded"))
    first = recorded.first_recorded
    if "start_day" in changes and first is not None and new["start_day"] > first:
        conflicts.append(problem("start_day", "recorded_before_start",
                                 f"{first} 已有检测或签到记录,开始日期不能晚于它",
                                 f"a test or a sign-off is recorded on {first}: the start day "
                                 f"cannot be after it"))
    return changes, problems, conflicts


def names_visible(scope: str) -> bool:
    """名字和联系方式: only the village's and the town's operators see them; every level above
    sees the pseudonym and the category."""
    try:
        return level_of(scope) >= Level.TOWN
    except ValueError:
        return False
