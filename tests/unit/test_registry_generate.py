"""The generated registry: the shipped demo is exactly what the generator gives, villages hang
under real townships, and every village, township and county has the units it should."""

import csv
import io
from collections import Counter
from datetime import date
from pathlib import Path

from shared.registry import demo
from shared.registry.generate import generate_from
from shared.registry.importer import Known, check, read

DIVISIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "divisions"


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_shipped_demo_is_what_the_generator_gives() -> None:
    from_extract, problems = generate_from(demo.DEMO_DIR, "430621")
    assert problems == []
    from_real_data, problems = generate_from(DIVISIONS, "430621")
    assert problems == []
    assert from_extract == from_real_data  # the extract is the real data's rows
    for name, content in from_extract.items():
        assert (demo.DEMO_DIR / name).read_text(encoding="utf-8") == content, name


def test_the_demo_county_has_its_real_townships_and_generated_villages() -> None:
    batch = demo.batch()
    towns = [n for n in batch.nodes if len(n.code) == 9]
    assert [(t.code, t.name) for t in towns] == demo.TOWNS
    villages = Counter(n.code[:9] for n in batch.nodes if len(n.code) == 12)
    assert set(villages) == {code for code, _ in demo.TOWNS}
    assert all(10 <= n <= 25 for n in villages.values())
    assert check(batch, Known(), date(2024, 1, 1))[1] == []


def test_every_village_has_a_committee_and_a_clinic_and_the_mix_is_realistic() -> None:
    units = demo.units()
    codes = {u["code"] for u in units}
    villages = [code for code, _ in demo.nodes() if len(code) == 12]
    assert all(f"{v}-VC" in codes and f"{v}-CL" in codes for v in villages)
    assert all(f"{town}-HC" in codes and f"{town}-PS" in codes for town, _ in demo.TOWNS)
    for kept in ("430621108001-CL", "430621108001-VC", "430621104001-VC", "430621104001-CL",
                 "430621-HOSP", "430621-MS1"):
        assert kept in codes
    assert all(u["code"].startswith(u["node"] + "-") for u in units)
    types = Counter(u["unit_type"] for u in units)
    assert set(types) >= {"village_committee", "village_clinic", "primary_school",
                          "middle_school", "kindergarten", "township_health_centre",
                          "private_clinic", "pharmacy", "enterprise", "market", "care_home",
                          "hospital"}
    assert 1000 <= len(units) <= 3000
    by_node = Counter(u["node"] for u in units)
    assert by_node["430621"] >= 10  # county-run hospitals and schools


def test_a_province_is_about_30000_villages_and_200000_units() -> None:
    files, problems = generate_from(DIVISIONS, "43")
    assert problems == []
    villages, units = rows(files["villages.csv"]), rows(files["units.csv"])
    assert len(rows(files["streets.csv"])) == 2008
    assert 28_000 <= len(villages) <= 33_000
    assert 190_000 <= len(units) <= 240_000
    assert len({u["code"] for u in units}) == len(units)


def test_generated_files_import_cleanly(tmp_path: Path) -> None:
    files, _ = generate_from(DIVISIONS, "4306")
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    batch = read([tmp_path])
    assert batch.problems == []
    real_areas = [r for r in rows((DIVISIONS / "areas.csv").read_text(encoding="utf-8"))
                  if r["cityCode"] == "4306"]
    assert {n.code for n in batch.nodes if len(n.code) == 6} == {r["code"] for r in real_areas}
    assert {u.node[:6] for u in batch.units} == {r["code"] for r in real_areas}
