"""scripts/pin-images against a registry on 127.0.0.1 that behaves like Docker Hub's
(401 with a Bearer challenge, an anonymous token from the realm, HEAD on manifests
answering Docker-Content-Digest): the stack's own docker-compose.yml and Dockerfile,
copied, come out pinned; nothing is written when one image cannot be resolved."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "registry.test"
MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def load_script() -> ModuleType:
    """The script as a module (its file name has no .py)."""
    loader = SourceFileLoader("pin_images", str(ROOT / "scripts" / "pin-images"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


pin_images = load_script()


def digest_of(repository: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


@dataclass
class FakeRegistry:
    """What the registry saw; ``missing`` names `repo:tag` it answers 404 for."""

    url: str = ""
    heads: list[str] = field(default_factory=list)
    tokens_issued: list[dict[str, list[str]]] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)


def handler_for(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self.send_error(404)
                return
            query = parse_qs(url.query)
            registry.tokens_issued.append(query)
            body = json.dumps({"token": "anon:" + query["scope"][0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            parts = urlsplit(self.path).path.split("/manifests/")
            repository, tag = parts[0].removeprefix("/v2/"), parts[1]
            scope = f"repository:{repository}:pull"
            if self.headers.get("Authorization") != f"Bearer anon:{scope}":
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer realm="{registry.url}/token",service="{SERVICE}",scope="{scope}"',
                )
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            registry.heads.append(f"{repository}:{tag}")
            accepted = self.headers.get("Accept", "")
            if not all(media in accepted for media in MEDIA_TYPES):
                self.send_response(406)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if f"{repository}:{tag}" in registry.missing:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", MEDIA_TYPES[0])
            self.send_header("Docker-Content-Digest", digest_of(repository, tag))
            self.send_header("Content-Length", "1234")
            self.end_headers()

    return Handler


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    state = FakeRegistry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    compose, dockerfile = tmp_path / "docker-compose.yml", tmp_path / "Dockerfile"
    shutil.copy(ROOT / "docker-compose.yml", compose)
    shutil.copy(ROOT / "Dockerfile", dockerfile)
    return compose, dockerfile


def run(files: tuple[Path, Path], registry: FakeRegistry, *extra: str) -> int:
    compose, dockerfile = files
    argv = ["--compose", str(compose), "--dockerfile", str(dockerfile), *extra]
    if registry.url:
        argv += ["--registry", f"docker.io={registry.url}"]
    result: int = pin_images.main(argv)
    return result


def test_every_pulled_image_is_pinned_and_the_check_then_passes(
    files: tuple[Path, Path], registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    compose, dockerfile = files
    assert run(files, registry, "--check") == 1
    listed = capsys.readouterr().out
    assert "docker-compose.yml:" in listed and "postgres:17" in listed
    assert "Dockerfile:" in listed and "python:3.11-slim" in listed
    assert "authflow:latest" not in listed  # built by the compose file, never pulled

    assert run(files, registry) == 0
    text = compose.read_text()
    for name, repository, tag in [
        ("postgres", "library/postgres", "17"),
        ("temporalio/server", "temporalio/server", "1.31.2"),
        ("temporalio/admin-tools", "temporalio/admin-tools", "1.31.2"),
        ("temporalio/ui", "temporalio/ui", "2.49.1"),
        ("caddy", "library/caddy", "2"),
        ("axllent/mailpit", "axllent/mailpit", "v1.27"),
    ]:
        assert f"image: {name}:{tag}@{digest_of(repository, tag)}\n" in text, name
    assert "TEMPORAL_VERSION:-" not in text  # resolved with its default, written out
    assert "image: ${AUTHFLOW_IMAGE:-authflow:latest}\n" in text
    froms = [line for line in dockerfile.read_text().splitlines() if line.startswith("FROM ")]
    pinned = f"python:3.11-slim@{digest_of('library/python', '3.11-slim')}"
    assert froms == [f"FROM {pinned} AS build", f"FROM {pinned}"]
    # One anonymous token per repository, asked with the challenge's service and scope.
    assert {q["service"][0] for q in registry.tokens_issued} == {SERVICE}
    assert len(registry.tokens_issued) == len({q["scope"][0] for q in registry.tokens_issued})

    capsys.readouterr()
    assert run(files, registry, "--check") == 0
    assert capsys.readouterr().out == ""
    before = len(registry.heads)
    assert run(files, registry) == 0  # already pinned: nothing asked, nothing changed
    assert len(registry.heads) == before
    assert compose.read_text() == text


def test_nothing_is_written_when_an_image_cannot_be_resolved(
    files: tuple[Path, Path], registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    compose, dockerfile = files
    original = compose.read_text(), dockerfile.read_text()
    registry.missing.add("axllent/mailpit:v1.27")
    assert run(files, registry) == 2
    assert "axllent/mailpit:v1.27: the registry answered 404" in capsys.readouterr().err
    assert (compose.read_text(), dockerfile.read_text()) == original


def test_update_re_resolves_a_pinned_image(
    files: tuple[Path, Path], registry: FakeRegistry
) -> None:
    compose, _ = files
    stale = "sha256:" + "0" * 64
    compose.write_text(compose.read_text().replace("image: caddy:2\n", f"image: caddy:2@{stale}\n"))
    assert run(files, registry) == 0
    assert f"caddy:2@{stale}" in compose.read_text()  # left alone without --update
    assert run(files, registry, "--update") == 0
    assert f"image: caddy:2@{digest_of('library/caddy', '2')}\n" in compose.read_text()


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("postgres:17", "docker.io", "library/postgres", "17"),
        ("axllent/mailpit", "docker.io", "axllent/mailpit", "latest"),
        ("ghcr.io/acme/tool:1.2", "ghcr.io", "acme/tool", "1.2"),
        ("localhost:5000/team/app:3", "localhost:5000", "team/app", "3"),
    ],
)
def test_references_get_dockers_defaults(
    text: str, registry: str, repository: str, tag: str
) -> None:
    ref = pin_images.parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, None)
