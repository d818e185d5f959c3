"""The `rollcall` command: run the system, a service, migrations and reference data."""

import asyncio
import contextlib
import enum
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console

from rollcall import reconcile
from rollcall.bench.cli import bench
from rollcall.calendar_cli import app as calendar_app
from rollcall.dhis2_cli import app as dhis2_app
from rollcall.notify_cli import app as notify_app
from rollcall.registry_cli import app as registry_app
from rollcall.simulate import app as simulate_app
from rollcall.token_cli import app as token_app
from rollcall.token_cli import issue_demo_token
from shared.settings import Settings

app = typer.Typer(help="Rollcall: multi-level daily reporting and fever-case alerts.",
                  no_args_is_help=True)
app.add_typer(registry_app, name="registry")
app.add_typer(simulate_app, name="simulate")
app.add_typer(token_app, name="token")
app.add_typer(reconcile.app, name="reconcile")
app.add_typer(calendar_app, name="calendar")
app.add_typer(dhis2_app, name="dhis2")
app.add_typer(notify_app, name="notify")
app.command()(bench)
console = Console()


class Service(enum.StrEnum):
    ingest = "ingest"
    aggregate = "aggregate"
    alerts = "alerts"
    console = "console"
    notify = "notify"
    ledger = "ledger"
    signoff = "signoff"


def port_of(settings: Settings, service: Service) -> int:
    return settings.http_port or getattr(settings, f"{service.value}_port")


@app.command()
def serve(service: Service, port: int | None = typer.Option(None, help="HTTP port")) -> None:
    """Run one service (HTTP API and bus consumers) against ROLLCALL_NATS_URL / DATABASE_URL."""
    import importlib

    import uvicorn

    from shared.observability import configure_logging

    settings = Settings()
    configure_logging(service.value, settings.log_level, settings.log_format)
    _exit_zero_after_sigterm()
    module = importlib.import_module(f"services.{service.value}.app")
    # log_config=None: uvicorn's loggers go through the handler configured above.
    uvicorn.run(module.create_app(settings), host=settings.http_host,
                port=port or port_of(settings, service), log_config=None,
                timeout_graceful_shutdown=15)


def _exit_zero_after_sigterm() -> None:
    """SIGTERM asks for a graceful stop: uvicorn stops taking requests, the broker drains its
    in-flight messages, the process exits 0. Uvicorn re-raises the signal once it has shut down,
    which would end the process with "killed by SIGTERM"; this handler turns that into exit 0
    (and a SIGTERM that arrives before uvicorn listens stops the process at once)."""
    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


@app.command()
def migrate() -> None:
    """Apply the database migrations (every service's schema)."""
    from rollcall.migrate import upgrade

    # Only the database: the one-shot migration step of a deployment has no NATS user.
    database_url = Settings().database_url
    if not database_url:
        raise typer.BadParameter("ROLLCALL_DATABASE_URL must be set")
    upgrade(database_url)
    console.print("migrations applied")


@app.command()
def demo() -> None:
    """Load the built-in demo county (岳阳县) into the registry and tell running services."""
    from rollcall.reference import load_demo_and_announce

    settings = Settings()
    nats_url, database_url = settings.require_servers()
    asyncio.run(load_demo_and_announce(database_url, nats_url, settings.stream_replicas))
    console.print("demo county 430621 岳阳县 loaded")


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout}s")


@app.command()
def dev(data_dir: Path = typer.Option(Path(".rollcall"), help="where embedded servers keep data"),
        simulate: bool = typer.Option(True, help="run the report simulator beside the services"),
        ) -> None:
    """Run everything on this machine: embedded NATS and PostgreSQL (unless ROLLCALL_NATS_URL /
    ROLLCALL_DATABASE_URL are set), migrations, the demo county, the services, the console and
    a simulator sending the demo county's day."""
    from rollcall.embedded import EmbeddedNats, EmbeddedPostgres
    from rollcall.migrate import upgrade
    from rollcall.reference import load_demo_and_announce

    settings = Settings()
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with contextlib.ExitStack() as stack:
        nats_url, database_url = settings.nats_url, settings.database_url
        if not nats_url:
            nats_url = stack.enter_context(EmbeddedNats(data_dir / "nats")).url
            console.print(f"[green]NATS[/] (embedded, JetStream) on {nats_url}")
        if not database_url:
            database_url = stack.enter_context(EmbeddedPostgres(data_dir / "postgres")).url
            console.print(f"[green]PostgreSQL[/] (embedded) on {database_url}")
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        token = asyncio.run(issue_demo_token(database_url))
        token_file = data_dir / "demo-token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        env = {**os.environ, "ROLLCALL_NATS_URL": nats_url, "ROLLCALL_DATABASE_URL": database_url}
        # Scheduled editions (ROLLCALL_EDITIONS) are made with the demo county's token unless
        # another is given.
        env.setdefault("ROLLCALL_EDITIONS_TOKEN", token)
        # Notify's message that an edition is out links to the workbook on this console.
        env.setdefault("ROLLCALL_CONSOLE_URL",
                       f"http://{settings.http_host}:{settings.console_port}")
        procs: dict[Service, subprocess.Popen] = {}
        stack.callback(_stop_all, procs)
        for service in Service:
            procs[service] = subprocess.Popen(
                [sys.executable, "-m", "rollcall", "serve", service.value], env=env,
                start_new_session=True)
        base = f"http://{settings.http_host}"
        for service, proc in procs.items():
            _wait_ready(f"{base}:{port_of(settings, service)}", proc)
            console.print(f"[green]{service.value}[/] on {base}:{port_of(settings, service)}"
                          f"  (API docs: {base}:{port_of(settings, service)}/docs)")
        simulator = {}
        if simulate:
            from rollcall.simulate import start_beside_dev

            simulator["simulate"] = start_beside_dev(env, token, data_dir / "simulate.log")
            stack.callback(_stop_all, simulator)
        console_url = f"{base}:{settings.console_port}"
        console.print(
            f"\n[bold]Console (岳阳县 command centre):[/] {console_url}/#token={token}\n"
            f"  (the link signs in as the county's demo operator; the form for units is at "
            f"{console_url}/report"
            + (f"; a simulator is sending the day's reports, log in "
               f"{data_dir / 'simulate.log'})" if simulate else ")"),
            soft_wrap=True)
        console.print(
            f"\nRollcall is running with the demo county 430621 岳阳县.\n"
            f"Demo operator token for county 430621 (also in {token_file}):\n  {token}\n"
            "Try:\n"
            f"  export TOKEN={token}\n"
            f"  curl -X POST {base}:{settings.ingest_port}/v1/reports "
            "-H 'content-type: application/json' -H \"Authorization: Bearer $TOKEN\" \\\n"
            "    -d '{\"unit\": \"430621108001-CL\", \"day\": \"'$(TZ=Asia/Shanghai date +%F)'\", "
            "\"reporter\": \"王医生\", \"values\": {\"fever\": 2, \"ili\": 1}}'\n"
            f"  curl -H \"Authorization: Bearer $TOKEN\" "
            f"{base}:{settings.aggregate_port}/v1/rollups/430621\n"
            "Press Ctrl-C to stop.", soft_wrap=True)
        while not stop and all(p.poll() is None for p in procs.values()):
            time.sleep(0.2)
        console.print("stopping…")


def _stop_all(procs: dict) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


from rollcall.alerts_bench import app as alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")
