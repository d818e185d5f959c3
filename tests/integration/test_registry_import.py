"""Imports on PostgreSQL, in a database of their own (so the services' tests keep the demo
county): all or nothing, idempotent, moves that keep earlier days where they were, the real Hunan
divisions with a generated province below them, and the CLI with its notice on the bus."""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import nats
import pytest
from sqlalchemy.engine import make_url

from rollcall.migrate import upgrade
from rollcall.reference import import_files
from shared.registry.generate import generate_from

DIVISIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "divisions"
DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "demo"


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def database(servers) -> str:
    """A fresh, migrated database on the session's server."""
    name = f"rollcall_registry_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(plain(servers.database_url))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = make_url(servers.database_url).set(database=name).render_as_string(False)
    await asyncio.to_thread(upgrade, url)
    return url


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain(url))
    try:
        return {table: await conn.fetchval(f"SELECT count(*) FROM registry.{table}")
                for table in ("nodes", "units", "placements")}
    finally:
        await conn.close()


async def placements(url: str, unit: str) -> list[tuple[date, str]]:
    conn = await asyncpg.connect(plain(url))
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT valid_from, node_code FROM registry.placements WHERE unit_code = $1 "
            "ORDER BY valid_from", unit)]
    finally:
        await conn.close()


def units_file(path: Path, *rows: str,
               header: str = "code,name,type,node,placed_from") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


async def test_the_demo_imports_once_and_then_changes_nothing(database: str) -> None:
    _, first = await import_files(database, [DEMO])
    assert first.problems == []
    _, again = await import_files(database, [DEMO])
    assert again.problems == [] and not again.counts.changed
    assert (await counts(database))["units"] >= first.counts.units_added > 1000


async def test_a_bad_row_anywhere_refuses_the_whole_import(database: str, tmp_path: Path
                                                           ) -> None:
    await import_files(database, [DEMO])
    before = await counts(database)
    (tmp_path / "villages.csv").write_text(
        "code,name,town\n430621108901,新村,430621108\n430621108902,新二村,430621108\n",
        encoding="utf-8")
    bad = units_file(tmp_path / "units.csv", "N-1,新药店,pharmacy,430621108901,",
                     "N-2,新诊所,pharmacy,430621108999,")
    _, result = await import_files(database, [tmp_path / "villages.csv", bad])
    assert result.counts is None
    assert [(Path(p.file).name, p.line, p.code) for p in result.problems] == [
        ("units.csv", 3, "unknown_node")]
    assert await counts(database) == before
    # Fixed, the same import goes through, and a second time changes nothing.
    units_file(bad, "N-1,新药店,pharmacy,430621108901,", "N-2,新诊所,pharmacy,430621108902,")
    _, result = await import_files(database, [tmp_path / "villages.csv", bad])
    assert (result.counts.nodes_added, result.counts.units_added) == (2, 2)
    _, result = await import_files(database, [tmp_path / "villages.csv", bad])
    assert not result.counts.changed


async def test_parents_may_come_from_an_earlier_import(database: str, tmp_path: Path) -> None:
    await import_files(database, [DEMO])
    villages = tmp_path / "villages.json"
    villages.write_text(json.dumps([{"code": "430621203950", "name": "湖滨村"},
                                    {"code": "430621299950", "name": "无主村"}],
                                   ensure_ascii=False, indent=1), encoding="utf-8")
    _, result = await import_files(database, [villages])
    assert [(p.line, p.code, p.message_en) for p in result.problems] == [
        (6, "unknown_parent", "unknown parent 430621299: import it first or in the same run")]


async def test_changes_are_updates_and_counted(database: str, tmp_path: Path) -> None:
    await import_files(database, [DEMO])
    header = "code,name,type,node,cutoff,active_to"
    f = units_file(tmp_path / "units.csv", "C-1,药店,pharmacy,430621108,,", header=header)
    await import_files(database, [f])
    units_file(f, "C-1,大药房,pharmacy,430621108,09:00,2030-12-31", header=header)
    _, result = await import_files(database, [f])
    assert (result.counts.units_added, result.counts.units_changed) == (0, 1)
    assert result.counts.placements_set == 0


async def test_a_move_takes_effect_from_its_day(database: str, tmp_path: Path) -> None:
    await import_files(database, [DEMO])
    unit, here, there = "M-1", "430621108001", "430621108002"
    f = units_file(tmp_path / "units.csv", f"{unit},流动药店,pharmacy,{here},2024-01-01")
    await import_files(database, [f])
    units_file(f, f"{unit},流动药店,pharmacy,{there},2024-03-01")
    _, result = await import_files(database, [f])
    assert (result.counts.placements_set, result.counts.units_changed) == (1, 0)
    assert await placements(database, unit) == [(date(2024, 1, 1), here),
                                                 (date(2024, 3, 1), there)]
    _, result = await import_files(database, [f])
    assert not result.counts.changed
    # Without a date, a move takes effect on the import's day.
    units_file(f, f"{unit},流动药店,pharmacy,{here},")
    _, result = await import_files(database, [f], day=date(2024, 6, 1))
    assert await placements(database, unit) == [(date(2024, 1, 1), here),
                                                 (date(2024, 3, 1), there),
                                                 (date(2024, 6, 1), here)]


async def test_a_dry_run_writes_nothing(database: str, tmp_path: Path) -> None:
    await import_files(database, [DEMO])
    before = await counts(database)
    f = units_file(tmp_path / "units.csv", "DRY-1,药店,pharmacy,430621108,")
    _, result = await import_files(database, [f], dry_run=True)
    assert result.counts.units_added == 1
    assert await counts(database) == before


@pytest.mark.slow
async def test_hunan_imports_within_a_minute(database: str, tmp_path: Path) -> None:
    """The real divisions of Hunan (134 county-level areas, 2,008 townships) with about 30,000
    generated villages and 200,000 units; the same again changes nothing."""
    files, problems = generate_from(DIVISIONS, "43")
    assert problems == []
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    started = time.perf_counter()
    batch, result = await import_files(database, [tmp_path])
    elapsed = time.perf_counter() - started
    assert result.problems == []
    assert len(batch.units) > 190_000 and len(batch.nodes) > 30_000
    total = await counts(database)
    assert total["units"] >= len(batch.units) and total["nodes"] >= len(batch.nodes)
    # A minute on an idle machine; allow for the other test processes sharing it.
    assert elapsed < 120, f"Hunan took {elapsed:.1f} s"
    _, again = await import_files(database, [tmp_path])
    assert not again.counts.changed


def cli(servers, database: str, *args: str) -> subprocess.CompletedProcess:
    env = {**servers.env(), "ROLLCALL_DATABASE_URL": database, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "rollcall", "registry", *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def test_the_cli_refuses_with_line_numbers_and_announces_what_it_imports(
        servers, database: str, tmp_path: Path) -> None:
    await import_files(database, [DEMO])
    bad = tmp_path / "streets.csv"
    bad.write_text("code,name,areaCode,provinceCode,cityCode\n"
                   "430621108,公田镇,430621,43,4306\n430621,岳阳县,430621,43,4306\n",
                   encoding="utf-8")
    refused = await asyncio.to_thread(cli, servers, database, "import", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:3: code:" in refused.stdout and "[wrong_level]" in refused.stdout
    assert "nothing imported" in refused.stdout

    connection = await nats.connect(servers.nats_url)
    try:
        notices = await connection.subscribe("registry.changed")
        good = units_file(tmp_path / "units.csv", "CLI-1,药店,pharmacy,430621108,")
        done = await asyncio.to_thread(cli, servers, database, "import", str(DEMO), str(good))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "units: 1 added, 0 changed" in done.stdout
        notice = json.loads((await notices.next_msg(timeout=10)).data)
        assert set(notice["what"]) == {"nodes", "units"}
    finally:
        await connection.close()
    shown = await asyncio.to_thread(cli, servers, database, "show", "430621108")
    assert shown.returncode == 0 and "village" in shown.stdout and "pharmacy" in shown.stdout
    moved = await asyncio.to_thread(cli, servers, database, "move", "CLI-1", "430621108003",
                                    "--from", "2024-05-01")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert await placements(database, "CLI-1") == [(date(2000, 1, 1), "430621108"),
                                                   (date(2024, 5, 1), "430621108003")]
    nowhere = await asyncio.to_thread(cli, servers, database, "move", "CLI-1", "4306")
    assert nowhere.returncode == 1 and "[wrong_level]" in nowhere.stdout
