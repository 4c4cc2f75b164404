"""A strong secret for settings built by tests (no secret has a built-in default)."""

from __future__ import annotations

import secrets

TEST_SECRET = secrets.token_urlsafe(48)
