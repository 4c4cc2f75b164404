"""Text keys computed in Python, so that search and sort behave the same on SQLite and
PostgreSQL without database extensions (unaccent, ICU collations)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SPACES = re.compile(r"\s+")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Case- and accent-insensitive form: ``"Éclair  CAFÉ"`` -> ``"eclair cafe"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", stripped.casefold()).strip()


def search_text(title: str, summary: str) -> str:
    return f"{normalise(title)}\n{normalise(summary)}"


def tags_key(tags: Iterable[str]) -> str:
    return "|" + "".join(f"{normalise(t)}|" for t in tags)


def slugify(title: str) -> str:
    slug = _SLUG_JUNK.sub("-", normalise(title)).strip("-")
    return slug[:80].strip("-") or "course"


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped (``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
