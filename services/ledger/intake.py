"""What a registration must be, whether it comes as JSON or as a CSV row: every problem named by
its field, a stable code and the reason in Chinese and English. No SQL, NATS or HTTP."""

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


def names_visible(scope: str) -> bool:
    """名字和联系方式: only the village's and the town's operators see them; every level above
    sees the pseudonym and the category."""
    try:
        return level_of(scope) >= Level.TOWN
    except ValueError:
        return False
