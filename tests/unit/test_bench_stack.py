"""The environment the bench hands the stack it starts: one mechanism (``extra_env``) for
what a scenario needs, and the default that lets one client address play many users."""

from pathlib import Path

import pytest

from devtools.bench.stack import BENCH_CLIENT_LIMIT, OwnStack
from tests.secret import TEST_SECRET


def _stack(extra_env: dict[str, str] | None = None) -> OwnStack:
    return OwnStack(
        workers=1,
        smtp_host="127.0.0.1",
        smtp_port=2525,
        log_file=Path("unused.log"),
        extra_env=extra_env,
    )


def test_the_load_s_one_address_is_allowed_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CLIENT_RATE_LIMIT_PER_MINUTE", raising=False)
    env = _stack()._environment(tmp_path)
    assert env["CLIENT_RATE_LIMIT_PER_MINUTE"] == str(BENCH_CLIENT_LIMIT)
    monkeypatch.setenv("CLIENT_RATE_LIMIT_PER_MINUTE", "60")
    assert _stack()._environment(tmp_path)["CLIENT_RATE_LIMIT_PER_MINUTE"] == "60"


def test_a_scenario_s_settings_win_over_the_environment_and_the_bench_s_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMAIL_RATE_LIMITS", "announcement=1")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")
    stack = _stack(
        {
            "EMAIL_RATE_LIMITS": "announcement=10",
            "JWT_SECRET": TEST_SECRET,
            "CLIENT_RATE_LIMIT_PER_MINUTE": "5",
        }
    )
    env = stack._environment(tmp_path)
    assert env["EMAIL_RATE_LIMITS"] == "announcement=10"
    assert env["JWT_SECRET"] == TEST_SECRET
    assert env["CLIENT_RATE_LIMIT_PER_MINUTE"] == "5"
    assert "TEMPORAL_ADDRESS" not in env  # the stack runs its own Temporal
    assert env["SMTP_PORT"] == "2525"
    assert env["DATABASE_URL"] == f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}"
