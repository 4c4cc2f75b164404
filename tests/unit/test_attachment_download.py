"""The pure parts of an attachment download: which ``Range`` is honoured, ignored or
unsatisfiable (RFC 9110), and the ``Content-Disposition`` names (RFC 6266)."""

from __future__ import annotations

import pytest

from api.courses.content import content_disposition, parse_range
from authflow.errors import RangeNotSatisfiable

SIZE = 10


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-3", (0, 3)),
        ("bytes=2-2", (2, 2)),
        ("bytes=4-", (4, 9)),
        ("bytes=5-99", (5, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-99", (0, 9)),
        # Invalid, so ignored: the whole file.
        ("bytes=5-2", None),
        ("bytes=9-0", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("items=0-1", None),
        ("bytes=0-1,4-5", None),
    ],
)
def test_ranges(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, SIZE) == span


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99-99"])
def test_a_valid_range_outside_the_file_is_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, SIZE)
    assert caught.value.headers == {"Content-Range": f"bytes */{SIZE}"}


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("notes.pdf", "notes.pdf"),
        ("Crème brûlée.pdf", "Creme brulee.pdf"),
        ("日本語.txt", "___.txt"),
        ('say "hi" \\ 100%.txt', "say _hi_ _ 100_.txt"),
    ],
)
def test_content_disposition_has_an_ascii_fallback(name: str, fallback: str) -> None:
    value = content_disposition(name)
    assert value.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert value.isascii()
