"""`rollcall bench --quick` end to end: the command keeps working, and its figures hold together
(every report reached the rollups, latencies are measured per report)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rollcall.bench import phases, workload
from shared.registry.demo import DEMO_DIR


def test_quick_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # Its own embedded servers, never the session's: the benchmark counts whole days.
    env = {k: v for k, v in os.environ.items()
           if k not in ("ROLLCALL_NATS_URL", "NATS_URL", "ROLLCALL_DATABASE_URL", "DATABASE_URL")}
    run = subprocess.run(
        [sys.executable, "-m", "rollcall", "bench", "--quick", "--divisions", str(DEMO_DIR),
         "--statements", "--json", str(out)], env=env, capture_output=True, text=True,
        timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    r = json.loads(out.read_text())
    units = r["registry"]["units"]
    assert units > 1000
    for path in ("bulk", "bus", "bus_batched"):
        assert r[path]["reports"] == units
        assert 0 < r[path]["accepted_seconds"] <= r[path]["seconds"]
    assert r["baseline"]["jetstream_per_second"] > 0 and r["baseline"]["copy_per_second"] > 0
    # --statements: PostgreSQL's own account of each flat-out phase, the ledger's insert in it.
    statements = r["bulk"]["statements"]
    assert any("INSERT INTO ingest.reports" in s["query"] for s in statements), statements
    assert all(s["calls"] > 0 and s["us_per_report"] >= 0 for s in statements)
    for key in ("latency_bus", "latency_bulk"):
        lat = r[key]
        assert lat["count"] == 600  # 200 reports/s for 3 s
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 30
    analytics = r["batch_analytics"]  # the bulk phase's day, recomputed from the ledger
    assert analytics["reports"] == analytics["reported"] == units and analytics["matches_live"]
    assert analytics["nodes"] > 100 and analytics["seconds"] > 0
    assert analytics["cpu_us_per_report"]["postgres"] > 0
    assert r["case_to_alert"]["count"] == 15
    assert 0 < r["case_to_alert"]["p99"] < 30
    assert r["backlog"]["reports"] == 3000 and r["backlog"]["catch_up_seconds"] > 0
    cutoff = r["cutoff"]  # nobody reported that day: every unit pending, then the schools missing
    assert cutoff["pending_before"] == cutoff["units_expected"] == units
    assert 0 < cutoff["missing_after"] < units and cutoff["cutoff_node_days_announced"] > 0
    assert set(r["peak_rss_mib"]) >= {"ingest", "aggregate", "alerts"}
    assert all(v > 10 for v in r["peak_rss_mib"].values())
    assert "Rollcall benchmark" in run.stdout and "raw JetStream" in run.stdout


def test_percentiles_are_nearest_rank() -> None:
    lat = phases.Latency([float(i) for i in range(1, 101)])
    assert (lat.percentile(50), lat.percentile(95), lat.percentile(99)) == (50.0, 95.0, 99.0)
    assert phases.Latency([0.3]).percentile(99) == 0.3


def test_payloads_are_valid_reports_and_deterministic() -> None:
    from datetime import date

    items = workload.reports([f"U{i}" for i in range(100)], date(2026, 3, 1))
    assert items == workload.reports([f"U{i}" for i in range(100)], date(2026, 3, 1))
    zero = [i for i in items if not i["values"]]
    assert 5 <= len(zero) <= 40  # about one in five is a zero report
    for item in items:
        v = item["values"]
        assert v.get("nat_positive", 0) <= v.get("nat_tests", 0)
    bodies = workload.bulk_bodies(items, 30)
    assert [len(json.loads(b)) for b in bodies] == [30, 30, 30, 10]
    # Each unit sends only what its type's form holds: a pharmacy no tests.
    pharmacies = workload.reports([f"U{i}" for i in range(100)], date(2026, 3, 1),
                                  {f"U{i}": "pharmacy" for i in range(100)})
    assert all(set(i["values"]) <= {"fever", "ili", "max_temperature"} for i in pharmacies)
