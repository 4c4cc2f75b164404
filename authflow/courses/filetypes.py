"""An attachment's type, judged from its bytes (never from its name or the client's
Content-Type): ``filetype`` reads the magic numbers; text is accepted when the bytes are
UTF-8 without control characters.  Anything else (executables, unknown binaries) is
refused with 415."""

from __future__ import annotations

import filetype

ALLOWED: frozenset[str] = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/epub+zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "audio/ogg",
        "video/mp4",
        "video/webm",
    }
)
TEXT = "text/plain"
_TEXT_CONTROLS = set(range(0, 32)) - {9, 10, 12, 13}


def detect(data: bytes) -> str | None:
    """The accepted MIME type of ``data``, or None when it is not accepted."""
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return kind.mime if kind.mime in ALLOWED else None
    return TEXT if _is_text(data) else None


def _is_text(data: bytes) -> bool:
    if not data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) in _TEXT_CONTROLS for c in text[:65536])
