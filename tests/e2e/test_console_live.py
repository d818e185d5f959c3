"""The console's live stream without a browser: a report makes a `rollup` event reach the
operator of its area and nobody else, and a console stopping ends its open streams at once
instead of waiting for them."""

import signal
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from tests.conftest import start_service
from tests.e2e.conftest import credential

ZONE = ZoneInfo("Asia/Shanghai")


def follow(url: str, token: str, seen: list[str], ready: threading.Event) -> None:
    """Reads a console's event stream into `seen` until the console ends it."""
    with httpx.stream("GET", f"{url}/api/events", timeout=httpx.Timeout(10, read=60),
                      headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: hello"):
                ready.set()
            if line.startswith("data:") or line.startswith("event:"):
                seen.append(line)


def test_events_reach_their_area_only_and_end_when_the_console_stops(
        day_system, day_servers, tmp_path):
    console = start_service(
        day_servers, "console", tmp_path,
        ROLLCALL_CONSOLE_INGEST_URL=day_system["ingest"],
        ROLLCALL_CONSOLE_AGGREGATE_URL=day_system["aggregate"],
        ROLLCALL_CONSOLE_ALERTS_URL=day_system["alerts"])
    try:
        town = credential(day_servers, "operator", "430621105", "新墙镇值班员")
        other = credential(day_servers, "operator", "430621106", "柏祥镇值班员")
        seen_town: list[str] = []
        seen_other: list[str] = []
        ready = [threading.Event(), threading.Event()]
        readers = [threading.Thread(target=follow, args=(console.url, town, seen_town, ready[0]),
                                    daemon=True),
                   threading.Thread(target=follow, args=(console.url, other, seen_other,
                                                         ready[1]), daemon=True)]
        for reader in readers:
            reader.start()
        assert all(r.wait(30) for r in ready)

        day = datetime.now(ZONE).date().isoformat()
        as_town = {"Authorization": f"Bearer {town}"}
        completeness = httpx.get(
            f"{day_system['aggregate']}/v1/rollups/430621105/completeness",
            params={"day": day}, headers=as_town, timeout=30).json()["completeness"]
        # Missing after its cutoff, pending before it (a run just after midnight).
        unit = (completeness["missing_units"] + completeness["pending_units"])[0]
        answer = httpx.post(f"{day_system['ingest']}/v1/reports", timeout=30, headers=as_town,
                            json={"unit": unit["unit"], "day": day, "reporter": "刘主任",
                                  "values": {"fever": 2}})
        assert answer.status_code == 201, answer.text
        node = f'"{unit["node"]}"'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(node in s for s in seen_town):
            time.sleep(0.1)
        assert any(node in s for s in seen_town), seen_town
        assert not any("430621105" in s for s in seen_other), seen_other

        # Stopping: the open streams end and the process exits well within uvicorn's grace.
        started = time.monotonic()
        console.proc.send_signal(signal.SIGTERM)
        console.proc.wait(30)
        stopped_in = time.monotonic() - started
        for reader in readers:
            reader.join(10)
            assert not reader.is_alive()
        assert stopped_in < 8, f"took {stopped_in:.1f} s to stop with two pages open"
    finally:
        console.stop()
