"""Email preferences and the one-click unsubscribe link (RFC 8058), through the real API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from authflow.policies import PreferenceCategory
from authflow.preferences import UNSUBSCRIBE_KEY_LABEL, unsubscribe_headers
from tests.stack import Stack

pytestmark = pytest.mark.e2e

PREFS = "/api/v1/me/email-preferences"


async def _signed_in(stack: Stack) -> tuple[str, dict[str, str]]:
    email, password = await stack.register_and_verify()
    tokens = await stack.login(email, password)
    me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
    return me.json()["id"], stack.bearer(tokens)


def _token_for(stack: Stack, user_id: str, category: PreferenceCategory) -> str:
    headers = unsubscribe_headers(
        stack.settings.public_base_url,
        stack.settings.derived_key(UNSUBSCRIBE_KEY_LABEL),
        user_id,
        category,
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith(stack.settings.public_base_url.rstrip("/") + "/api/v1/unsubscribe?")
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_preferences_default_on_and_partial_update(stack: Stack) -> None:
    _, auth = await _signed_in(stack)
    first = await stack.http.get(PREFS, headers=auth)
    assert first.status_code == 200
    assert first.json() == {"announcements": True, "course_updates": True, "reminders": True}

    changed = await stack.http.put(PREFS, headers=auth, json={"reminders": False})
    assert changed.status_code == 200
    assert changed.json() == {"announcements": True, "course_updates": True, "reminders": False}
    again = await stack.http.get(PREFS, headers=auth)
    assert again.json()["reminders"] is False


async def test_preferences_need_a_session_and_a_valid_body(stack: Stack) -> None:
    assert (await stack.http.get(PREFS)).status_code == 401
    _, auth = await _signed_in(stack)
    for bad in ({"reminders": "no"}, {"codes": False}, [1]):
        response = await stack.http.put(PREFS, headers=auth, json=bad)
        assert response.status_code == 422, response.text
        assert "error" in response.json()


async def test_one_click_unsubscribe_turns_off_that_kind_only(stack: Stack) -> None:
    user_id, auth = await _signed_in(stack)
    token = _token_for(stack, user_id, PreferenceCategory.ANNOUNCEMENTS)
    # What a mail client sends (RFC 8058): a form body, no cookie, no login.
    response = await stack.http.post(
        "/api/v1/unsubscribe",
        params={"token": token},
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["category"] == "announcements"
    prefs = (await stack.http.get(PREFS, headers=auth)).json()
    assert prefs == {"announcements": False, "course_updates": True, "reminders": True}
    # A second click is harmless.
    again = await stack.http.post("/api/v1/unsubscribe", params={"token": token})
    assert again.status_code == 200


async def test_a_forged_or_damaged_token_is_refused(stack: Stack) -> None:
    user_id, auth = await _signed_in(stack)
    token = _token_for(stack, user_id, PreferenceCategory.REMINDERS)
    other_id, _ = await _signed_in(stack)
    forged = _token_for(stack, other_id, PreferenceCategory.REMINDERS)
    # The signature of one user's token does not carry over to another user's payload.
    spliced = ".".join([*forged.split(".")[:2], token.split(".")[2]])
    for bad in (token[:-2] + "xx", spliced, "nonsense", ""):
        response = await stack.http.post("/api/v1/unsubscribe", params={"token": bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["code"] == "invalid_token"
    for params in ({}, {"token": "x" * 5000}):  # no token, or far too long for one
        response = await stack.http.post("/api/v1/unsubscribe", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] == "invalid_token"
    prefs = (await stack.http.get(PREFS, headers=auth)).json()
    assert prefs["reminders"] is True


async def test_the_confirmation_page_asks_before_unsubscribing(stack: Stack) -> None:
    user_id, auth = await _signed_in(stack)
    token = _token_for(stack, user_id, PreferenceCategory.COURSE_UPDATES)
    page = await stack.http.get("/unsubscribe", params={"token": token})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "course updates" in page.text and "<form" in page.text
    # Opening the link (a scanner, a preview) changes nothing ...
    assert (await stack.http.get(PREFS, headers=auth)).json()["course_updates"] is True
    # ... confirming does.
    done = await stack.http.post("/unsubscribe", params={"token": token})
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert (await stack.http.get(PREFS, headers=auth)).json()["course_updates"] is False
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    bad = await stack.http.get("/unsubscribe", params={"token": "x"}, headers=browser)
    assert bad.status_code == 400 and "not valid" in bad.text
    # Any other client gets the contract's error shape.
    for answer in (
        await stack.http.get("/unsubscribe", params={"token": "x"}),
        await stack.http.post("/unsubscribe", params={"token": "x"}),
    ):
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_token"


async def test_the_one_click_url_opened_in_a_browser_leads_to_the_page(stack: Stack) -> None:
    user_id, auth = await _signed_in(stack)
    token = _token_for(stack, user_id, PreferenceCategory.REMINDERS)
    opened = await stack.http.get("/api/v1/unsubscribe", params={"token": token})
    assert opened.status_code == 303
    page = await stack.http.get(opened.headers["location"])
    assert page.status_code == 200 and "reminders" in page.text and "<form" in page.text
    assert (await stack.http.get(PREFS, headers=auth)).json()["reminders"] is True
