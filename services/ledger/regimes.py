"""The regimes of people under control, read from configuration (services/ledger/data/
regimes.toml, or ROLLCALL_LEDGER_REGIMES): categories, the kinds of phase and where each is
spent, each regime's phases and test days, the outcomes of a closed file and the 包保 team's
roles. This module parses and checks; it holds no policy of its own."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path(__file__).parent / "data" / "regimes.toml"
PLACES = ("site", "home")


@dataclass(frozen=True, slots=True)
class Named:
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class PhaseKind:
    code: str
    name_zh: str
    name_en: str
    place: str  # site | home
    metric: str  # the catalogue's headcount of people in this kind of phase


@dataclass(frozen=True, slots=True)
class PhasePlan:
    kind: str
    days: int


@dataclass(frozen=True, slots=True)
class Regime:
    code: str
    name_zh: str
    name_en: str
    phases: tuple[PhasePlan, ...]
    test_days: tuple[int, ...]  # from day 0, the start day
    tests_after_release: tuple[int, ...]  # from the final release's day

    @property
    def days(self) -> int:
        return sum(p.days for p in self.phases)


@dataclass(frozen=True)
class Regimes:
    categories: dict[str, Named]
    phase_kinds: dict[str, PhaseKind]
    regimes: dict[str, Regime]
    outcomes: dict[str, Named]
    team_max: int
    team_roles: dict[str, str]

    def needs_site(self, regime: str) -> bool:
        """Whether a regime's first phase is spent at a named site."""
        return self.phase_kinds[self.regimes[regime].phases[0].kind].place == "site"

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.metric for k in self.phase_kinds.values()))


class RegimeError(ValueError):
    """The configuration is wrong: every problem, one per line."""


def _named(table: dict, where: str, problems: list[str]) -> dict[str, Named]:
    out = {}
    for code, entry in (table or {}).items():
        if not isinstance(entry, dict) or not entry.get("name_zh") or not entry.get("name_en"):
            problems.append(f"{where}.{code}: needs name_zh and name_en")
            continue
        out[code] = Named(code, str(entry["name_zh"]), str(entry["name_en"]))
    if not out:
        problems.append(f"[{where}] lists nothing")
    return out


def load_regimes(path: Path | None = None) -> Regimes:
    data = tomllib.loads((path or DEFAULT_PATH).read_text(encoding="utf-8"))
    problems: list[str] = []
    categories = _named(data.get("categories"), "categories", problems)
    outcomes = _named(data.get("outcomes"), "outcomes", problems)
    kinds = {}
    for code, entry in (data.get("phases") or {}).items():
        place = entry.get("place")
        if place not in PLACES:
            problems.append(f"phases.{code}.place: one of {', '.join(PLACES)}, not {place!r}")
        if not entry.get("metric"):
            problems.append(f"phases.{code}.metric: the headcount's catalogue metric")
        kinds[code] = PhaseKind(code, str(entry.get("name_zh", code)),
                                str(entry.get("name_en", code)), str(place),
                                str(entry.get("metric")))
    regimes = {}
    for code, entry in (data.get("regimes") or {}).items():
        phases = []
        for i, p in enumerate(entry.get("phases") or []):
            if p.get("kind") not in kinds:
                problems.append(f"regimes.{code}.phases[{i}].kind: unknown {p.get('kind')!r}")
            if not isinstance(p.get("days"), int) or p["days"] < 1:
                problems.append(f"regimes.{code}.phases[{i}].days: a whole number of days ≥ 1")
            phases.append(PhasePlan(str(p.get("kind")), int(p.get("days") or 0)))
        if not phases:
            problems.append(f"regimes.{code}.phases: at least one phase")
        tests = entry.get("test_days", [])
        after = entry.get("tests_after_release", [])
        for name, days in (("test_days", tests), ("tests_after_release", after)):
            if not all(isinstance(d, int) and d >= 0 for d in days):
                problems.append(f"regimes.{code}.{name}: whole numbers of days ≥ 0")
        regime = Regime(code, str(entry.get("name_zh", code)), str(entry.get("name_en", code)),
                        tuple(phases), tuple(sorted(set(tests))), tuple(sorted(set(after))))
        if any(d > regime.days for d in regime.test_days):
            problems.append(f"regimes.{code}.test_days: by day {regime.days}, its release day")
        regimes[code] = regime
    if not regimes:
        problems.append("[regimes] lists nothing")
    team = data.get("team") or {}
    roles = {str(k): str(v) for k, v in (team.get("roles") or {}).items()}
    if not roles:
        problems.append("team.roles lists nothing")
    if problems:
        raise RegimeError("\n".join(problems))
    return Regimes(categories, kinds, regimes, outcomes, int(team.get("max_members", 5)), roles)
