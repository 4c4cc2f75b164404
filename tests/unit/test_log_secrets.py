"""The session-end check that no secret reached a log line (tests/log_secrets.py)."""

from __future__ import annotations

import logging

from tests.log_secrets import LogCapture, check_session, find_leaks


def test_a_logged_password_or_token_is_found_and_masked() -> None:
    leaks = find_leaks(["login ok", "body: password=hunter2-long!"], {"hunter2-long!"})
    assert len(leaks) == 1
    assert "hunter2-long!" not in leaks[0] and "<SECRET>" in leaks[0]


def test_a_code_counts_only_when_it_stands_alone() -> None:
    lines = ["request id 9123456abc", "took 0.123456 s", "otp=123456"]
    leaks = find_leaks(lines, {"123456"})
    assert leaks == ["6-char secret in: otp=<SECRET>"]


def test_octal_escapes_in_a_logged_protobuf_are_bytes_not_digits() -> None:
    # The SDK's debug line of a task token: "\001" then the bytes "234" is not a code,
    # but a payload that carries one ("\006" is its length) is.
    token = r'task_token: "\n$01a2\022/enr\001234\330G\030\001"'
    assert find_leaks([token], {"001234"}) == []
    payload = r'data: "\n\006123456\022\001x"'
    assert find_leaks([payload], {"123456"}) == [
        r'6-char secret in: data: "\n\006<SECRET>\022\001x"'
    ]


def test_the_session_check() -> None:
    assert check_session([], set()) is None  # unit tests only: nothing to check
    assert check_session(["a line"], {"s3cret-token"}) is None
    vacuous = check_session([], {"s3cret-token"})
    assert vacuous is not None and "vacuous" in vacuous
    leaked = check_session(["token s3cret-token"], {"s3cret-token"})
    assert leaked is not None and "<SECRET>" in leaked and "s3cret-token" not in leaked


def test_the_capture_keeps_formatted_lines() -> None:
    capture = LogCapture()
    logger = logging.getLogger("tests.log_secrets.demo")
    logger.addHandler(capture)
    try:
        logger.warning("hello %s", "world")
    finally:
        logger.removeHandler(capture)
    assert capture.lines == ["hello world"]
