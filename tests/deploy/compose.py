"""Reading the deployment files as docker compose and docker build do, without Docker: YAML
with compose's merge tags, `${VAR}` interpolation from an env file, and the image's ENV lines."""

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CLUSTER = ROOT / "deploy" / "compose.cluster.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NATS_CONF = ROOT / "deploy" / "nats"


class _Loader(yaml.SafeLoader):
    """YAML as compose reads it: `!override` and `!reset` only say how an overlay merges."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


_Loader.add_constructor("!override", _tagged)
_Loader.add_constructor("!reset", _tagged)


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader: no arbitrary objects


def merge(base: Any, overlay: Any) -> Any:
    """`docker compose -f base -f overlay`: mappings merge key by key, the rest is replaced
    (what our overlays need: compose merges some lists, e.g. ports, which they `!override`)."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in overlay.items()}}
    return overlay


class MissingVariable(LookupError):
    pass


_VAR = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
                  r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def variables(text: str) -> set[str]:
    """The names a compose file interpolates."""
    return {m["braced"] or m["plain"] for m in _VAR.finditer(text) if not m["dollar"]}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match) -> str:
        if m["dollar"]:
            return "$"
        name, op, arg = m["braced"] or m["plain"], m["op"], m["arg"]
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if missing else current
        if op in (":?", "?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VAR.sub(substitute, value)


def dotenv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def environment(service: dict, unset: bool = True) -> dict[str, str]:
    """A service's environment. A name without a value is passed by compose only when .env or
    the shell sets it: kept as "" with `unset`, left out without (as a container gets it)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items() if unset or v is not None}


def rollcall_services(doc: dict) -> dict[str, dict]:
    """The services that run the Rollcall image."""
    return {name: s for name, s in doc["services"].items()
            if "ROLLCALL_IMAGE" in str(s.get("image", "")) or "build" in s}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final image's stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
                    for line in lines if line and not line.startswith("#")]
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    """The ENV the image sets (KEY=VALUE form), $PATH-style references left as they are."""
    env = {}
    for op, args in final_stage():
        if op == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env
