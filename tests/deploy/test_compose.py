"""The README's compose steps on a real Docker Engine with Docker Compose v2, as a county's IT
officer runs them: a copy of the repository, `sh deploy/secrets.sh`, `docker compose up -d
--wait`, the demo county, a token, a report, the person on duty, a fever case and the SMS and
robot message that tell of it, the console in a browser; then a crash mid-burst, Prometheus,
`stop` and `up` again, and the cluster overlay with a NATS node killed. The official images
cannot be pulled here: the stand-ins of tests/deploy/engine.py take their place through the
variables a user sets for a registry mirror (deploy/README.md).

The tests of this module run in order on one compose project with its own name and free ports;
`down -v` removes it at the end, also after a failure."""

import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from threading import Thread
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import eventually
from tests.deploy.compose import ROOT, dotenv
from tests.deploy.engine import (
    EngineUnavailable,
    build_stand_ins,
    ensure_daemon,
    ensure_tools,
    run,
)

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, VILLAGE = "430621", "430621108001"
CLINIC = f"{VILLAGE}-CL"
CLUSTER_FILES = ["-f", "docker-compose.yml", "-f", "deploy/compose.cluster.yml"]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE = "rollcall:compose-test"
CHROMIUM = os.environ.get("ROLLCALL_CHROMIUM", "/usr/bin/chromium")
# The SMS gateway and group robot stand-in: a container on the project's network, named as
# .env's ROLLCALL_NOTIFY_SMS_URL says (tests/deploy/receiver.py).
RECEIVER = "sms-gateway"
RECEIVER_SCRIPT = Path(__file__).with_name("receiver.py")


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive free loopback ports, below the kernel's range of
    ephemeral ports: one of those, free now, may be a client connection's by the time a
    container publishes it."""
    ephemeral_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        first = random.randrange(10000, ephemeral_from - count)
        ports = set(range(first, first + count))
        if not ports & _GIVEN and all(_free(port) for port in ports):
            _GIVEN.update(ports)
            return first


_GIVEN: set[int] = set()  # two picks in a row must not give one port twice


def _free(port: int) -> bool:
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Project:
    directory: Path
    name: str
    env: dict[str, str]
    files: list[str] = field(default_factory=list)
    token: str = ""

    def compose(self, *args: str, check: bool = True, timeout: float = 600,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = ["docker", "compose", "-p", self.name, *self.files, *args]
        result = subprocess.run(argv, cwd=self.directory, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[3:])} exited {result.returncode}:\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}\n"
                                 f"{self.logs()}")
        return result

    def logs(self) -> str:
        result = subprocess.run(["docker", "compose", "-p", self.name, *self.files, "logs",
                                 "--tail", "30", "--no-color"], cwd=self.directory,
                                capture_output=True, text=True, timeout=120)
        return result.stdout[-6000:]

    def containers(self) -> list[dict]:
        out = self.compose("ps", "-a", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return [r for row in rows for r in (row if isinstance(row, list) else [row])]

    def url(self, service: str) -> str:
        """A service's published address; on the cluster overlay, its first replica's."""
        replicated = self.files == CLUSTER_FILES and service not in (
            "console", "notify", "signoff", "ledger")
        variable = f"{service.upper()}_HOST_PORT{'S' if replicated else ''}"
        return f"http://127.0.0.1:{self.env[variable].split('-')[0]}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start_receiver(self) -> None:
        """The SMS gateway and robot stand-in on the project's network, as `RECEIVER`; nothing
        published on the host. It prints each request it takes as a JSON line (its log)."""
        self.stop_receiver()
        run("docker", "run", "-d", "--name", f"{self.name}-{RECEIVER}", "--no-healthcheck",
            "--network", f"{self.name}_default", "--network-alias", RECEIVER, IMAGE,
            "python", "-c", RECEIVER_SCRIPT.read_text())

    def received(self) -> list[dict]:
        result = run("docker", "logs", f"{self.name}-{RECEIVER}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def stop_receiver(self) -> None:
        # Before `down`: a container of its own on the network would keep compose from
        # removing it.
        subprocess.run(["docker", "rm", "-f", f"{self.name}-{RECEIVER}"], capture_output=True,
                       timeout=60)

    def container_pid(self, service: str, index: int = 0) -> tuple[str, int]:
        ids = self.compose("ps", "-q", service).stdout.split()
        assert ids, f"no container for {service}"
        pid = run("docker", "inspect", "-f", "{{.State.Pid}}", ids[index]).stdout.strip()
        return ids[index], int(pid)


def _set_env(path: Path, updates: dict[str, str]) -> None:
    """Change .env as a user would with an editor: the lines are kept, their values replaced."""
    lines, seen = [], set()
    for line in path.read_text().splitlines():
        key = line.partition("=")[0].strip()
        if key in updates and not line.lstrip().startswith("#"):
            line, _ = f"{key}={updates[key]}", seen.add(key)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in updates.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n")


def _copy_repository(target: Path) -> None:
    """The files a clone would have (tracked ones, and new ones not ignored yet)."""
    files = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).stdout
    for name in filter(None, files.split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith(".pytest-tmp"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("compose")
    try:
        ensure_tools()
        daemon = ensure_daemon(root)
    except EngineUnavailable as exc:
        # Only a user who is neither root nor in the docker group lands here. As root, and in
        # CI, a missing engine is a failure: the deployment must be proved, not skipped.
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(f"no Docker Engine, and as root or in CI one is required: {exc}")
        pytest.skip(f"no Docker Engine to be had without root: {exc}")
    project = None
    try:
        started = time.monotonic()
        stand_ins = build_stand_ins(root)
        print(f"stand-ins ready in {time.monotonic() - started:.0f}s: {stand_ins}")
        directory = root / "rollcall"
        _copy_repository(directory)
        if HOST_CA.exists():  # this machine reaches PyPI through a proxy that intercepts TLS
            shutil.copy(HOST_CA, directory / "deploy" / "build-ca" / "host.crt")
        # The README's first step.
        run("sh", "deploy/secrets.sh", cwd=directory)
        settings = {
            **stand_ins.compose_env(), "ROLLCALL_IMAGE": IMAGE, "PUBLISH_ADDRESS": "127.0.0.1",
            **{f"{name}_HOST_PORT": str(free_ports())
               for name in ("INGEST", "AGGREGATE", "ALERTS", "NOTIFY", "SIGNOFF", "LEDGER",
                            "CONSOLE", "PROMETHEUS")},
            # A batch held by a crashed aggregate comes back after 10 s, not a minute.
            "ROLLCALL_AGGREGATE_ACK_WAIT": "10",
            # The county's SMS gateway (here the receiver the test starts on compose's network).
            "ROLLCALL_NOTIFY_SMS_URL": f"http://{RECEIVER}:8080/sms",
            "ROLLCALL_NOTIFY_ALLOWED_HOSTS": RECEIVER,  # the gateway's and the robot's host
        }
        _set_env(directory / ".env", settings)
        env = dotenv(directory / ".env")
        assert all(env[k] for k in env if k.endswith("_PASSWORD")), "secrets.sh set them all"
        project = Project(directory, f"rollcall-test-{uuid.uuid4().hex[:8]}", env)
        yield project
    finally:
        if project is not None:
            project.stop_receiver()
            project.files = CLUSTER_FILES
            project.compose("--profile", "observability", "--profile", "tools", "down", "-v",
                            "--remove-orphans", "--timeout", "20", check=False)
            # Earlier builds of the test's image that a new one replaced.
            subprocess.run(["docker", "image", "prune", "-f", "--filter",
                            "label=org.opencontainers.image.title=rollcall"],
                           capture_output=True, timeout=120)
        daemon.stop()


def test_the_image_builds_both_ways_and_imports_every_entry_point(project: Project) -> None:
    """`docker compose build` (the daemon's BuildKit) and the classic builder both build the
    recipe without Docker Hub, and the image imports the CLI and every service's app with the
    runtime dependencies only."""
    project.compose("build")
    classic = f"{IMAGE}-classic"
    run("docker", "build", "-q", "-f", "deploy/Dockerfile", "-t", classic,
        "--build-arg", f"PYTHON_IMAGE={project.env['PYTHON_IMAGE']}", ".",
        cwd=project.directory, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    apps = sorted(f"services.{p.parent.name}.app" for p in (ROOT / "services").glob("*/app.py"))
    assert len(apps) >= 4
    script = f"import rollcall.cli, {', '.join(apps)}; print('imported')"
    for image in (IMAGE, classic):
        result = run("docker", "run", "--rm", image, "python", "-c", script)
        assert result.stdout.strip() == "imported"
        pip = run("docker", "run", "--rm", image, "pip", "list", "--format", "freeze").stdout
        assert "pytest" not in pip and "httpx" in pip, "runtime dependencies only"
        leftover = run("docker", "run", "--rm", image, "ls", "/tmp").stdout
        assert "build-ca" not in leftover, "the build's CA certificates stay in the build stage"


def test_up_waits_for_every_service(project: Project) -> None:
    """`docker compose up -d --wait`: every service healthy, migrate exited 0."""
    project.compose("up", "-d", "--wait", timeout=300)
    states = {c["Service"]: c for c in project.containers()}
    assert set(states) == {"postgres", "nats", "migrate", "ingest", "aggregate", "alerts",
                           "notify", "signoff", "ledger", "console"}
    assert states["migrate"]["State"] == "exited" and states["migrate"]["ExitCode"] == 0
    for name, container in states.items():
        if name != "migrate":
            assert container["Health"] == "healthy", (name, container["Status"])


def _rollup(project: Project, day: str) -> dict:
    response = httpx.get(f"{project.url('aggregate')}/v1/rollups/{COUNTY}",
                         params={"day": day}, headers=project.auth(), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _fever(project: Project, day: str) -> float:
    return _rollup(project, day)["values"].get("fever", 0)


def _fever_when_up(project: Project, day: str) -> float:
    """The figure, or -1 while aggregate restarts (its HTTP API is down with it)."""
    try:
        return _fever(project, day)
    except (httpx.HTTPError, AssertionError):
        return -1


def test_the_readme_steps_demo_token_report_rollup(project: Project) -> None:
    loaded = project.compose("run", "--rm", "tools", "rollcall", "demo")
    assert "430621" in loaded.stdout, loaded.stdout
    issued = project.compose("run", "--rm", "-T", "tools", "rollcall", "token", "issue",
                             "--operator", COUNTY, "--holder", "县指挥部")
    project.token = issued.stdout.strip().splitlines()[-1]
    assert project.token.startswith("rc_"), issued.stdout

    ingest = project.url("ingest")

    def submitted() -> httpx.Response | None:  # ingest learns of the demo units from the bus
        response = httpx.post(f"{ingest}/v1/reports", headers=project.auth(), timeout=10, json={
            "unit": CLINIC, "day": today(), "reporter": "王医生", "values": {"fever": 2}})
        return None if "unknown_unit" in response.text else response

    response = eventually(submitted, timeout=30, interval=0.5)
    assert response is not None and response.status_code == 201, response and response.text
    assert eventually(lambda: _fever(project, today()) == 2, timeout=30, interval=0.5)


def test_a_fever_case_opens_its_alert_and_the_person_on_duty_is_told(project: Project) -> None:
    """The county's staff through notify's API (a village's person on duty with a phone and a
    WeCom robot, the clinic's person in charge with a phone); a fever case opens its alert, and
    both hear of it at once: the SMS gateway takes one message per phone, the robot one, and
    notify records each as sent on the alert."""
    notify = project.url("notify")
    project.start_receiver()
    csv = {**project.auth(), "Content-Type": "text/csv"}
    people = httpx.post(f"{notify}/v1/staff/people", headers=csv, timeout=10, content=(
        "code,name,node,phone,email,chat_kind,chat_webhook,chat_secret\n"
        f"zhang,张三,{VILLAGE},13912345678,,wecom,http://{RECEIVER}:8080/robot/wecom/zhang,\n"
        f"qian,钱医生,{VILLAGE},13600001111,,,,\n"))
    assert people.json() == {"kind": "people", "written": 2}, people.text
    contacts = httpx.post(f"{notify}/v1/staff/contacts", headers=csv, timeout=10,
                          content=f"scope,role,person\n{CLINIC},in_charge,qian\n")
    assert contacts.status_code == 200, contacts.text
    roster = httpx.put(f"{notify}/v1/rosters/{VILLAGE}/{today()}", headers=project.auth(),
                       timeout=10, json={"shifts": [{"person": "zhang", "role": "on_duty"}]})
    assert roster.status_code == 200, roster.text

    ingest, alerts = project.url("ingest"), project.url("alerts")

    def case_alerts() -> list:
        return httpx.get(f"{alerts}/v1/alerts", params={"node": VILLAGE, "kind": "case"},
                         headers=project.auth(), timeout=10).json()

    assert case_alerts() == []
    found = (datetime.now(ZONE) - timedelta(minutes=5)).isoformat()
    case = httpx.post(f"{ingest}/v1/cases", headers=project.auth(), timeout=10, json={
        "unit": CLINIC, "kind": "fever", "temperature": 38.6, "person_ref": "P-compose",
        "found_at": found})
    assert case.status_code == 201, case.text
    opened = eventually(case_alerts, timeout=30, interval=0.5)
    assert len(opened) == 1 and opened[0]["status"] == "open", opened
    alert_id = opened[0]["alert_id"]

    def told() -> list | None:
        answer = httpx.get(f"{notify}/v1/alerts/{alert_id}/deliveries", headers=project.auth(),
                           timeout=10)  # 404 until notify has taken the alert in
        rows = answer.json() if answer.status_code == 200 else []
        return rows if len(rows) == 3 and {r["status"] for r in rows} == {"sent"} else None

    deliveries = eventually(told, timeout=60, interval=0.5)
    assert deliveries, httpx.get(f"{notify}/v1/alerts/{alert_id}/deliveries",
                                 headers=project.auth(), timeout=10).text
    assert sorted((r["person_name"], r["role"], r["channel"]) for r in deliveries) == [
        ("张三", "on_duty", "sms"), ("张三", "on_duty", "wecom"),
        ("钱医生", "unit_in_charge", "sms")]
    about_it = [r for r in project.received() if alert_id in (r["key"] or "")
                or alert_id[:8] in json.dumps(r["body"], ensure_ascii=False)]
    assert sorted((r["path"], r["body"].get("to")) for r in about_it) == [
        ("/robot/wecom/zhang", None), ("/sms", "13600001111"), ("/sms", "13912345678")], about_it
    texts = [r["body"]["text"] if r["path"] == "/sms" else r["body"]["text"]["content"]
             for r in about_it]
    assert all("发现发热病例" in text for text in texts), texts
    project.stop_receiver()


def test_the_console_page_in_chromium(project: Project) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(locale="zh-CN", timezone_id="Asia/Shanghai")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{project.url('console')}/#token={project.token}")
            expect(page.locator("#main")).to_be_visible(timeout=30_000)
            expect(page.locator("#scope-name")).to_contain_text("岳阳县", timeout=30_000)
            expect(page.locator(".live")).to_have_attribute("data-state", "on", timeout=30_000)
            expect(page.locator(".alert.kind-case")).to_have_count(1, timeout=30_000)
            assert not errors, errors
        finally:
            browser.close()


def test_a_crash_mid_burst_loses_nothing(project: Project) -> None:
    """Aggregate's process is killed (SIGKILL, from outside the container: a crash, not a stop)
    while an operator uploads reports in bulk; the container restarts by itself, the batch it
    held comes back after the ack wait, and the county's totals are exact."""
    units = _units(project)
    days = [(datetime.now(ZONE).date() - timedelta(days=i)).isoformat() for i in (1, 2, 3)]
    container, pid = project.container_pid("aggregate")
    restarts = int(run("docker", "inspect", "-f", "{{.RestartCount}}", container).stdout)
    ingest = project.url("ingest")
    results: list[int] = []

    def upload() -> None:
        for day in days:
            for i in range(0, len(units), 250):
                response = httpx.post(f"{ingest}/v1/reports/bulk", headers=project.auth(),
                                      timeout=120, json=[
                                          {"unit": u, "day": day, "reporter": "演练",
                                           "values": {"fever": 1}} for u in units[i:i + 250]])
                assert response.status_code in (200, 201, 207), response.text[:500]
                results.append(response.json()["accepted"])

    uploader = Thread(target=upload)
    uploader.start()
    assert eventually(lambda: _fever(project, days[0]) > 0, timeout=60, interval=0.2)
    applied = sum(_fever(project, d) for d in days)
    os.kill(pid, signal.SIGKILL)
    assert applied < len(units) * len(days), "the crash came mid-burst"
    uploader.join(300)
    assert sum(results) == len(units) * len(days), results
    assert eventually(lambda: int(run("docker", "inspect", "-f", "{{.RestartCount}}",
                                      container).stdout) > restarts, timeout=60)
    for day in days:
        assert eventually(lambda d=day: _fever_when_up(project, d) >= len(units), timeout=120,
                          interval=1), (day, _fever_when_up(project, day))
    time.sleep(2)  # anything applied twice would show now
    assert [_fever(project, d) for d in days] == [len(units)] * len(days)
    print(f"aggregate killed with {applied:.0f} of {len(units) * len(days)} applied")


def _units(project: Project) -> list[str]:
    """The county's reporting units, as the registry lists them in the image."""
    script = ("from shared.registry import demo; print('\\n'.join(u['code'] for u in "
              f"demo.units() if u['node'].startswith('{COUNTY}')))")
    out = run("docker", "run", "--rm", IMAGE, "python", "-c", script).stdout
    return out.split()


def test_prometheus_scrapes_every_service(project: Project) -> None:
    project.compose("--profile", "observability", "up", "-d", "--wait", timeout=300)
    prometheus = project.url("prometheus")

    def healthy_targets() -> set[str]:
        try:
            targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return set()
        return {t["labels"].get("service") for t in targets["data"]["activeTargets"]
                if t["health"] == "up" and t["scrapeUrl"].endswith("/metrics")}

    assert eventually(lambda: healthy_targets() >= {"ingest", "aggregate", "alerts", "notify",
                                                    "signoff", "ledger", "console"},
                      timeout=60, interval=1), healthy_targets()


def test_stop_exits_cleanly_and_up_keeps_the_data(project: Project) -> None:
    before = _fever(project, today())
    project.compose("--profile", "observability", "stop", timeout=300)
    exits = {c["Service"]: (c["State"], c["ExitCode"]) for c in project.containers()}
    assert all(state == ("exited", 0) for state in exits.values()), exits
    project.compose("--profile", "observability", "up", "-d", "--wait", timeout=300)
    assert _fever(project, today()) == before == 2
    assert len(httpx.get(f"{project.url('alerts')}/v1/alerts", headers=project.auth(),
                         params={"node": VILLAGE, "kind": "case"}, timeout=10).json()) == 1


def test_the_cluster_overlay(project: Project) -> None:
    """Three NATS nodes, streams with three replicas, every service healthy (console included);
    a NATS node killed during an upload, and the totals exact."""
    project.compose("--profile", "observability", "down", "-v", timeout=300)
    ranges = {}
    for name, replicas in (("INGEST", 2), ("AGGREGATE", 3), ("ALERTS", 2)):
        first = free_ports(replicas)
        ranges[f"{name}_HOST_PORTS"] = f"{first}-{first + replicas - 1}"
    _set_env(project.directory / ".env", ranges)
    project.env.update(ranges)
    project.files = CLUSTER_FILES
    project.compose("up", "-d", "--wait", timeout=400)
    containers = project.containers()
    services = {c["Service"] for c in containers}
    assert {"nats", "nats-2", "nats-3", "notify", "console"} <= services
    for c in containers:
        if c["Service"] == "migrate":
            assert (c["State"], c["ExitCode"]) == ("exited", 0)
        else:
            assert c["Health"] == "healthy", (c["Name"], c["Status"])
    assert sum(c["Service"] == "aggregate" for c in containers) == 3

    project.compose("run", "--rm", "tools", "rollcall", "demo")
    issued = project.compose("run", "--rm", "-T", "tools", "rollcall", "token", "issue",
                             "--operator", COUNTY, "--holder", "省指挥部")
    project.token = issued.stdout.strip().splitlines()[-1]

    jsz = project.compose("exec", "-T", "nats", "wget", "-qO-",
                          "http://127.0.0.1:8222/jsz?streams=true&config=true").stdout
    streams = [s for account in json.loads(jsz)["account_details"]
               for s in account.get("stream_detail", [])]
    assert streams and all(s["config"]["num_replicas"] == 3 for s in streams), [
        (s["name"], s["config"]["num_replicas"]) for s in streams]
    assert all(len(s["cluster"].get("replicas", [])) == 2 for s in streams)

    units = _units(project)[:400]
    day = (datetime.now(ZONE).date() - timedelta(days=1)).isoformat()
    ingest = project.url("ingest")

    def upload(chunk: list[str]) -> int:
        response = eventually(lambda: _post_bulk(ingest, project, chunk, day), timeout=60,
                              interval=1)
        assert response is not None, "ingest answered during the node's restart"
        return response.json()["accepted"] + response.json().get("duplicate", 0)

    accepted = upload(units[:200])
    _, pid = project.container_pid("nats-2")
    os.kill(pid, signal.SIGKILL)
    accepted += upload(units[200:])
    assert accepted == len(units)
    assert eventually(lambda: _fever(project, day) >= len(units), timeout=120, interval=1), (
        _fever(project, day))
    time.sleep(2)
    assert _fever(project, day) == len(units)
    assert eventually(lambda: all(c["Health"] == "healthy" for c in project.containers()
                                  if c["Service"] != "migrate"), timeout=120, interval=2)


def _post_bulk(ingest: str, project: Project, units: list[str], day: str) -> httpx.Response | None:
    try:
        response = httpx.post(f"{ingest}/v1/reports/bulk", headers=project.auth(), timeout=60,
                              json=[{"unit": u, "day": day, "reporter": "演练",
                                     "values": {"fever": 1}} for u in units])
    except httpx.HTTPError:
        return None
    return response if response.status_code < 500 else None
