"""An httpx client that signs in to the admin console the way a browser does (cookies,
the form token of each page), for the console's HTTP tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.stack import Stack

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "authflow_console"


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1)


class ConsoleClient:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(
            base_url=stack.http.base_url, follow_redirects=False, timeout=30
        )
        self.token = ""

    async def aclose(self) -> None:
        await self.http.aclose()

    async def sign_in(self, email: str, password: str, **extra: str) -> httpx.Response:
        form = await self.http.get("/admin/login")
        assert form.status_code == 200, form.text
        self.stack.remember(password)
        response = await self.http.post(
            "/admin/login",
            data={"csrf_token": csrf_of(form.text), "email": email, "password": password, **extra},
        )
        if response.status_code == 303:
            self.token = await self.page_token()
        return response

    async def page_token(self, path: str = "/admin/users") -> str:
        page = await self.http.get(path)
        assert page.status_code in (200, 403), page.status_code
        return csrf_of(page.text)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        """A form POST with the page's token (``token=""`` sends none)."""
        body = dict(data or {})
        chosen = self.token if token is None else token
        if chosen:
            body["csrf_token"] = chosen
        return await self.http.post(path, data=body, **kw)

    async def flash(self, response: httpx.Response) -> str:
        """Follow a redirect and return the flash message the page shows."""
        assert response.status_code == 303, (response.status_code, response.text[:500])
        page = await self.http.get(response.headers["location"])
        match = re.search(r'<div class="flash (ok|error)" role="status">(.*?)</div>', page.text)
        assert match, f"no flash on {response.headers['location']}"
        return f"{match.group(1)}: {match.group(2)}"
