"""The ``authflow`` command line as a new operator meets it: readable help, the bench
asking for a scenario, every busy port reported at once with the flag that moves it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from authflow.cli import main
from authflow.ports import PortNeed, PortTaken, ensure_all_free, free_port
from devtools.bench.cli import SCENARIOS_HELP
from devtools.dev import DevOptions, _check_ports


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_top_level_help_is_plain_text_with_every_command() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "``" not in result.stdout  # no raw RST markup
    for command in ("dev", "api", "worker", "migrate", "bench"):
        assert f"    {command} " in result.stdout


def test_dev_help_describes_every_option_with_its_default() -> None:
    result = _run("dev", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Everything on one machine" in text
    for flag, default in (
        ("--temporal-port", "7233"),
        ("--ui-port", "8233"),
        ("--inbox-port", "8025"),
        ("--workers", "1"),
        ("--api-port", "8000"),
    ):
        assert flag in text
        assert f"{default})" in text.split(flag, 2)[-1].split("--", 1)[0], flag


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_bench_help_works_and_lists_every_scenario(flag: str) -> None:
    result = _run("bench", flag)
    assert result.returncode == 0, result.stderr
    for scenario in ("spike", "steady", "isolation", "scale", "faults", "all", "floor"):
        assert scenario in result.stdout


def test_bench_floor_help_works() -> None:
    result = _run("bench", "floor", "--help")
    assert result.returncode == 0, result.stderr
    assert "--n" in result.stdout


def test_bare_bench_lists_the_scenarios_and_starts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert "which scenario" in err
    for scenario in SCENARIOS_HELP:
        assert f"  {scenario} " in err
    assert "floor" in err


@pytest.fixture
def two_busy_ports() -> Iterator[tuple[int, int]]:
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    try:
        yield sockets[0].getsockname()[1], sockets[1].getsockname()[1]
    finally:
        for sock in sockets:
            sock.close()


def test_every_busy_port_is_reported_at_once(two_busy_ports: tuple[int, int]) -> None:
    temporal, inbox = two_busy_ports
    options = DevOptions(temporal_port=temporal, ui_port=free_port(), inbox_port=inbox)
    with pytest.raises(PortTaken) as caught:
        _check_ports(options, "127.0.0.1", free_port(), "127.0.0.1", free_port())
    message = str(caught.value)
    assert "2 ports are already in use" in message
    assert f"port {temporal} " in message and "--temporal-port" in message
    assert f"port {inbox} " in message and "--inbox-port" in message


def test_free_ports_pass() -> None:
    ensure_all_free([PortNeed("127.0.0.1", free_port(), "something", "--x")])


def test_dev_reports_busy_ports_on_the_command_line(
    two_busy_ports: tuple[int, int], tmp_path: Path
) -> None:
    api, ui = two_busy_ports
    result = _run(
        "dev", "--api-port", str(api), "--ui-port", str(ui),
        "--temporal-port", str(free_port()), "--inbox-port", str(free_port()),
        cwd=tmp_path,  # `authflow dev` keeps its state in ./var
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"port {api} " in result.stderr and "--api-port" in result.stderr
    assert f"port {ui} " in result.stderr and "--ui-port" in result.stderr


def test_dev_links_in_emails_follow_the_api_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.dev import DevOptions, _dev_environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("API_HOST", raising=False)
    env = _dev_environment(DevOptions(api_port=18001))
    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:18001"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://learn.example.com")
    assert _dev_environment(DevOptions(api_port=18001))["PUBLIC_BASE_URL"] == (
        "https://learn.example.com"
    )


def test_the_worker_runs_on_uvloop() -> None:
    """``authflow worker`` runs its loop on uvloop (installed with the project here)."""
    import uvloop

    from authflow.cli import _worker_event_loop

    async def running_loop() -> object:
        return asyncio.get_running_loop()

    with _worker_event_loop() as runner:
        assert isinstance(runner.run(running_loop()), uvloop.Loop)
