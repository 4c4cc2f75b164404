"""Small helpers the console's pages share: permission to see a page, lenient query
parameters (a bad filter is ignored, never a 422 or a 500), paging."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from .session import Console
from .web import PageError

PAGE_SIZE = 50
MAX_OFFSET = 1_000_000


def need(console: Console, permission: str) -> None:
    """The same permission the matching API route's guard asks for."""
    if not console.may(permission):
        raise PageError(403, f"This page needs the permission {permission!r}.")


def text_param(value: str | None, max_length: int = 200) -> str | None:
    """Search text: stripped; control characters (a NUL would reach the database) dropped."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()[:max_length]
    return cleaned or None


def offset_param(value: str | None) -> int:
    try:
        offset = int(value or 0)
    except ValueError:
        return 0
    return min(max(offset, 0), MAX_OFFSET)


def choice(value: str | None, allowed: list[str] | tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@dataclass(frozen=True)
class Pager:
    path: str
    filters: dict[str, str]
    offset: int
    total: int
    size: int = PAGE_SIZE

    def _url(self, offset: int) -> str:
        query = {k: v for k, v in self.filters.items() if v}
        if offset:
            query["offset"] = str(offset)
        return self.path + (f"?{urlencode(query)}" if query else "")

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def previous_url(self) -> str | None:
        return self._url(max(self.offset - self.size, 0)) if self.offset > 0 else None

    @property
    def next_url(self) -> str | None:
        return self._url(self.offset + self.size) if self.offset + self.size < self.total else None
