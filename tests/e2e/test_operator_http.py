"""What a new operator meets over HTTP (issue 19): broken JSON explained in words, the
Bearer challenge on 401, a favicon, offline API docs, metric series present from the start."""

from __future__ import annotations

import re

import pytest

from authflow.policies import EmailKind
from tests.auth_calls import AUTH
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"email": "a@example.com", "password": }', "line 1, column 40"),
        (b'{\n  "email": "a@example.com",\n  "password": "x"\n', "line 4, column 1"),
        (b"{'email': 1}", "line 1, column 2"),
    ],
)
async def test_broken_json_says_where_in_words(stack: Stack, body: bytes, where: str) -> None:
    response = await stack.http.post(
        f"{AUTH}/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("The body is not valid JSON: ")
    assert where in error["message"], error["message"]
    assert "JSON decode error" not in error["message"]


async def test_401_names_the_bearer_scheme(stack: Stack) -> None:
    missing = await stack.http.get(f"{AUTH}/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    bad = await stack.http.get(f"{AUTH}/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")


async def test_favicon_is_served(stack: Stack) -> None:
    response = await stack.http.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_api_docs_load_their_assets_from_the_product(stack: Stack, page: str) -> None:
    html = (await stack.http.get(page)).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        assert (await stack.http.get(asset)).status_code == 200, asset
    assert "fonts.googleapis" not in html


async def test_failure_and_retry_series_exist_from_the_start(stack: Stack) -> None:
    # Present whether or not anything failed yet (other tests of the session may have).
    text = (await stack.http.get("/metrics")).text
    for kind in EmailKind:
        assert f'authflow_emails_retried_total{{kind="{kind.value}"}} ' in text
        for reason in ("transient", "throttled", "permanent"):
            assert f'authflow_emails_failed_total{{kind="{kind.value}",reason="{reason}"}}' in text


async def test_console_routes_are_labelled_with_their_prefix(stack: Stack) -> None:
    await stack.http.get("/admin/login")
    text = (await stack.http.get("/metrics")).text
    assert 'route="/admin/login"' in text
    assert 'route="/login"' not in text
