"""Generated villages and reporting units under real townships, for the demo and for scale tests.

Village-level codes are not published with the division data, so villages are generated under
each real township (`<township code><3 digits>`, 10 to 25 of them, about 15 on average) and
given plausible names; each village, township and county gets the units it would have reporting
in a realistic mix (a village committee and a clinic everywhere; schools, kindergartens,
pharmacies, private clinics, enterprises, markets and care homes by chance). Deterministic: the
same divisions give the same files, byte for byte (the random choices are seeded by each code).
"""

import csv
import io
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shared.hierarchy import Level
from shared.registry.importer import KINDS, NodeRow, Problem, read
from shared.registry.unit_types import unit_types

SEED = "rollcall"
FIRST = list("东西南北新大小上下高龙凤金银石桃柳杨樟松竹梅荷莲青白黄红长平和兴福寿安丰田永")
SECOND = list("山湖岭塘冲坪桥港洲垸湾岗坡铺园林溪河江峰口坝源台庄")
SURNAMES = list("李王张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗彭谭曾易邓蒋付唐许邹")
PHARMACIES = ["老百姓大药房", "益丰大药房", "养天和大药房", "九芝堂大药房", "千金大药房",
              "湘雅大药房"]
FIRMS = ["恒达", "华盛", "鑫源", "顺发", "宏图", "兴旺", "金穗", "绿野", "湘江", "洞庭",
         "天成", "永固", "瑞丰", "新力", "康源", "富民", "嘉禾", "长盛", "丰源",
         "联创", "楚天", "汇丰", "旺达", "德润"]
TRADES = ["农业科技", "米业", "茶业", "建材", "服装", "食品", "水产", "机械制造", "电子",
          "物流", "纺织", "竹木制品", "油脂", "饲料", "生物科技", "包装材料", "农机",
          "果蔬", "畜牧", "新材料", "电器", "印务", "家具", "养殖"]
QUARTERS = ["城东", "城西", "城南", "城北", "中心"]
KINDERGARTENS = ["", "", "", "阳光", "金色童年", "小太阳", "蓝天", "育才"]
COUNTY_SUFFIX = re.compile(r"((各族|土家族|苗族|侗族|瑶族|回族)*自治县|县|区|市|特区|林区)$")


@dataclass
class Generated:
    divisions: list[NodeRow]
    villages: list[tuple[str, str, str]] = field(default_factory=list)  # code, name, town
    units: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    # code, name, type, sector, node


def _rng(code: str) -> random.Random:
    return random.Random(f"{SEED}:{code}")  # str seeds hash the same in every process


def _count(r: random.Random, weights: list[float]) -> int:
    """How many, drawn from the weights of 0, 1, 2, ..."""
    return r.choices(range(len(weights)), weights)[0]


def _short(county: str) -> str:
    short = COUNTY_SUFFIX.sub("", county)
    return short if len(short) >= 2 else county


def villages_of(town: str, town_name: str) -> list[tuple[str, str]]:
    """10 to 25 villages (communities in streets and town seats), numbered 001 on."""
    r = _rng(town)
    count = 10 + int(16 * r.random() ** 2)
    names = r.sample([a + b for a in FIRST for b in SECOND], count)
    if town_name.endswith("街道"):
        communities = count
    elif town_name.endswith("乡"):
        communities = 0
    else:
        communities = 1 + _count(r, [0.5, 0.3, 0.2])
    return [(f"{town}{i:03d}", name + ("社区" if i <= communities else "村"))
            for i, name in enumerate(names, 1)]


class _Units:
    def __init__(self, county_short: str) -> None:
        self.types = unit_types()
        self.county_short = county_short
        self.out: list[tuple[str, str, str, str, str]] = []
        self.firms: set[str] = set()

    def add(self, node: str, suffix: str, unit_type: str, name: str) -> None:
        self.out.append((f"{node}-{suffix}", name, unit_type, self.types[unit_type].sector,
                         node))

    def firm(self, r: random.Random, town: str = "") -> str:
        """A company name not yet used in the county (named after the town when the county's
        name is taken, as many are)."""
        town = re.sub(r"(镇|乡|街道|管理处)$", "", town)
        for attempt in range(40):
            prefix = self.county_short + (town if attempt >= 10 else "")
            name = f"{prefix}{r.choice(FIRMS)}{r.choice(TRADES)}有限公司"
            if name not in self.firms:
                break
        else:
            name = f"{self.county_short}{town}{r.choice(FIRMS)}{len(self.firms)}号有限公司"
        self.firms.add(name)
        return name

    def many(self, r: random.Random, node: str, prefix: str, unit_type: str, n: int,
             name) -> None:
        """n units named by `name(r)`, no two alike where the names allow it."""
        names: list[str] = []
        for _ in range(n):
            candidate = name(r)
            for _ in range(10):
                if candidate not in names:
                    break
                candidate = name(r)
            names.append(candidate)
        for i, unit_name in enumerate(names, 1):
            self.add(node, f"{prefix}{i}", unit_type, unit_name)


def _village_units(u: _Units, town_name: str, code: str, name: str) -> None:
    r = _rng(code)
    community = name.endswith("社区")
    base = name.removesuffix("社区").removesuffix("村")
    place = town_name + base
    u.add(code, "VC", "village_committee",
          f"{town_name}{name}{'居民' if community else '村民'}委员会")
    u.add(code, "CL", "village_clinic",
          f"{place}{'社区卫生服务站' if community else '村卫生室'}")
    if r.random() < 0.15:
        u.add(code, "CL2", "village_clinic", f"{town_name}{name}卫生室二部")
    if r.random() < (0.3 if community else 0.45):
        u.add(code, "PS", "primary_school", f"{place}小学")
    if r.random() < (0.7 if community else 0.55):
        u.add(code, "KG", "kindergarten", f"{town_name}{base}{r.choice(KINDERGARTENS)}幼儿园")
    # How many of each, drawn from the weights of 0, 1, 2, ...
    pharmacies = _count(r, [0, .3, .35, .25, .1] if community else [.45, .35, .2])
    clinics = _count(r, [.2, .45, .25, .1] if community else [.6, .3, .1])
    firms = _count(r, [.2, .3, .3, .2] if community else [.35, .35, .2, .1])
    u.many(r, code, "PH", "pharmacy", pharmacies, lambda r: f"{r.choice(PHARMACIES)}{place}店")
    u.many(r, code, "PC", "private_clinic", clinics,
           lambda r: f"{place}{r.choice(SURNAMES)}氏诊所")
    u.many(r, code, "EN", "enterprise", firms, lambda r: u.firm(r, town_name))
    if r.random() < (0.5 if community else 0.08):
        u.add(code, "MK", "market", f"{place}农贸市场")
    if r.random() < (0.2 if community else 0.12):
        u.add(code, "CH", "care_home", f"{place}{'日间照料中心' if community else '互助养老点'}")


def _town_units(u: _Units, code: str, name: str) -> None:
    r = _rng(code)
    street = name.endswith("街道")
    u.add(code, "HC", "township_health_centre",
          f"{name}{'社区卫生服务中心' if street else '卫生院'}")
    u.add(code, "PS", "primary_school", f"{name}中心小学")
    u.add(code, "MS", "middle_school", f"{name}中学")
    u.add(code, "KG", "kindergarten", f"{name}中心幼儿园")
    u.add(code, "CH", "care_home", f"{name}{'养老服务中心' if street else '敬老院'}")
    if r.random() < 0.85:
        u.add(code, "MK", "market", f"{name}农贸市场")
    u.many(r, code, "PH", "pharmacy", 1 + _count(r, [.4, .4, .2]),
           lambda r: f"{r.choice(PHARMACIES)}{name}店")
    u.many(r, code, "EN", "enterprise", 1 + _count(r, [.3, .3, .2, .2]),
           lambda r: u.firm(r, name))
    u.many(r, code, "PC", "private_clinic", _count(r, [.3, .4, .3]),
           lambda r: f"{name}{r.choice(SURNAMES)}氏诊所")


def _county_units(u: _Units, code: str, name: str) -> None:
    r = _rng(code)
    for suffix, unit_type, what in (
            ("HOSP", "hospital", "人民医院"), ("TCM", "hospital", "中医医院"),
            ("MCH", "hospital", "妇幼保健院"), ("MS1", "middle_school", "第一中学"),
            ("MS2", "middle_school", "第二中学"), ("VS", "middle_school", "职业中专"),
            ("PS1", "primary_school", "实验小学"), ("KG1", "kindergarten", "机关幼儿园"),
            ("CH", "care_home", "社会福利院"), ("MK", "market", "城区农贸市场")):
        u.add(code, suffix, unit_type, name + what)
    u.many(r, code, "EN", "enterprise", 3 + _count(r, [.3, .4, .3]), u.firm)
    u.many(r, code, "PH", "pharmacy", 2 + _count(r, [.5, .5]),
           lambda r: f"{r.choice(PHARMACIES)}{name}{r.choice(QUARTERS)}店")


def generate(divisions: list[NodeRow]) -> Generated:
    """Villages under every township and units at every county, township and village."""
    out = Generated(sorted(divisions, key=lambda n: n.code))
    names = {n.code: n.name for n in out.divisions}
    counties = [n for n in out.divisions if n.level == Level.COUNTY]
    towns = [n for n in out.divisions if n.level == Level.TOWN]
    for county in counties:
        u = _Units(_short(county.name))
        _county_units(u, county.code, county.name)
        for town in (t for t in towns if t.code.startswith(county.code)):
            _town_units(u, town.code, town.name)
            for code, name in villages_of(town.code, town.name):
                out.villages.append((code, name, town.code))
                _village_units(u, names[town.code], code, name)
        out.units += u.out
    return out


def _csv(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def files(generated: Generated) -> dict[str, str]:
    """The generated registry as files an import reads: the divisions in their published
    format, then villages.csv and units.csv."""
    out = {}
    for kind in ("provinces", "cities", "areas", "streets"):
        level = KINDS[kind].level
        columns = KINDS[kind].required
        rows = [[n.code, n.name, *(n.code[: {"provinceCode": 2, "cityCode": 4,
                                               "areaCode": 6}[c]] for c in columns[2:])]
                for n in generated.divisions if n.level == level]
        out[f"{kind}.csv"] = _csv(columns, rows)
    out["villages.csv"] = _csv(("code", "name", "town"), generated.villages)
    out["units.csv"] = _csv(("code", "name", "type", "sector", "node"), generated.units)
    return out


def generate_from(divisions_dir: Path, within: str) -> tuple[dict[str, str], list[Problem]]:
    """Read the divisions on the way to and below `within`, and generate files for them."""
    batch = read([divisions_dir / f"{k}.csv" for k in ("provinces", "cities", "areas",
                                                       "streets")], within=within)
    if batch.problems:
        return {}, batch.problems
    return files(generate(batch.nodes)), []
