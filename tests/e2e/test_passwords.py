"""Password rules, change, forgot and reset through the real chain, and the whole
account path as one test."""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from authflow.models import OtpDelivery, User
from authflow.otp_store import issue_code
from authflow.security.otp import CodeVault
from authflow.security.password_policy import is_common
from devtools.mailsink import StoredMessage
from tests.auth_calls import AUTH, assert_error, do_refresh, end_refresh_grace, get_me, try_login
from tests.stack import CODE_RE, Stack, eventually

pytestmark = pytest.mark.e2e

PASSWORD_CHANGED = "password was changed"
PASSWORD_WAS_RESET = "password was reset"
RESET_CODE = "password reset"


# --- helpers ------------------------------------------------------------------------------


def new_password(label: str = "new") -> str:
    return f"{label} pass phrase {secrets.token_hex(4)}"


async def change(
    stack: Stack, tokens: dict[str, Any], current: str, new: str, *, secret: bool = True
) -> httpx.Response:
    """``secret=False`` for made-up values (a refused "password" such as "short" is a
    plain word that may well occur in a log line without being a leak)."""
    if secret:
        stack.remember(current, new)
    return await stack.http.post(
        f"{AUTH}/password/change",
        json={"current_password": current, "new_password": new},
        headers=stack.bearer(tokens),
    )


async def forgot(stack: Stack, email: str) -> httpx.Response:
    return await stack.http.post(f"{AUTH}/password/forgot", json={"email": email})


async def reset(
    stack: Stack, email: str, otp: str, password: str, *, secret: bool = True
) -> httpx.Response:
    if secret:
        stack.remember(otp, password)
    return await stack.http.post(
        f"{AUTH}/password/reset", json={"email": email, "otp": otp, "new_password": password}
    )


async def verify(stack: Stack, email: str, otp: str) -> httpx.Response:
    stack.remember(otp)
    return await stack.http.post(f"{AUTH}/register/verify", json={"email": email, "otp": otp})


async def mail(stack: Stack, email: str, subject: str, after_id: int) -> StoredMessage:
    message = await stack.wait_for_mail(email, after_id=after_id, subject=subject)
    assert message.rcpt_tos == [email]  # exactly the intended recipient
    return message


async def reset_code_mail(stack: Stack, email: str, after_id: int) -> str:
    message = await mail(stack, email, RESET_CODE, after_id)
    assert "reset" in message.subject.lower()
    codes = CODE_RE.findall(message.text)
    assert len(codes) == 1, message.text
    assert message.html
    assert CODE_RE.search(message.html)
    stack.remember(codes[0])
    return str(codes[0])


async def forgot_after_cooldown(stack: Stack, email: str) -> httpx.Response:
    """Ask again as soon as the cooldown allows (polling, not sleeping a fixed time)."""

    async def accepted() -> httpx.Response | None:
        response = await forgot(stack, email)
        return response if response.status_code == 202 else None

    return await eventually(accepted, timeout=stack.settings.otp_resend_cooldown_seconds + 10)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def user_count(stack: Stack, email: str | None = None) -> int:
    query = select(func.count()).select_from(User)
    if email is not None:
        query = query.where(User.email == email)
    async with stack.db.session() as session:
        return int(await session.scalar(query) or 0)


# --- password rules ---------------------------------------------------------------------------
async def test_256_characters_of_unicode_work_and_are_not_truncated(stack: Stack) -> None:
    head = secrets.token_hex(8)
    password = (head + "ŝ€😀ü ñ" * 60)[:256]
    assert len(password) == 256
    email, _ = await stack.register_and_verify(password=password)
    stack.remember(password)
    assert (await try_login(stack, email, password)).status_code == 200
    changed = password[:200] + ("x" if password[200] != "x" else "y") + password[201:]
    assert_error(await try_login(stack, email, changed), 401, "invalid_credentials")
    assert_error(await try_login(stack, email, password[:255]), 401, "invalid_credentials")
    too_long = await stack.register(stack.new_email("long"), password + "z")
    assert_error(too_long, 422, "weak_password")


async def assert_refused_as_weak(stack: Stack, email: str, password: str) -> None:
    """422 weak_password, and no account written."""
    response = await stack.http.post(
        f"{AUTH}/register", json={"email": email, "password": password}
    )
    assert_error(response, 422, "weak_password")
    assert await user_count(stack, email) == 0


@pytest.mark.parametrize("password", ["123456789", "qwertyuiop", "password123", "PASSWORD123"])
async def test_common_passwords_are_refused(stack: Stack, password: str) -> None:
    assert is_common(password)  # the test is about the list, so check it holds them
    email = stack.new_email("common")
    await assert_refused_as_weak(stack, email, password)


@pytest.mark.parametrize("password", ["short", "1234567", ""])
async def test_too_short_passwords_are_refused(stack: Stack, password: str) -> None:
    email = stack.new_email("short")
    await assert_refused_as_weak(stack, email, password)


async def test_password_may_not_be_the_address(stack: Stack) -> None:
    local = f"someone.{secrets.token_hex(4)}"
    email = f"{local}@example.com"
    for password in (local, email, local.upper()):
        # (Posted directly: these "passwords" are the address, which is not a secret.)
        await assert_refused_as_weak(stack, email, password)


@pytest.mark.parametrize(
    ("local", "password"),
    [
        ("margaret.hamilton.{tag}", "margaret.hamilton"),
        ("margaret.hamilton.{tag}", "MargaretHamilton"),
        ("jsmithersab{tag}", "jsmithers2026"),
        ("jonathan.smithers-{tag}", "jonathan.smithers"),
    ],
)
async def test_password_may_not_be_built_on_the_words_of_the_address(
    stack: Stack, local: str, password: str
) -> None:
    """The audit's reproductions: the words of the local part, not the whole of it."""
    email = f"{local.format(tag=secrets.token_hex(3))}@example.com"
    # (Posted directly: these "passwords" are the address's own words, not secrets.)
    await assert_refused_as_weak(stack, email, password)


async def test_a_passphrase_holding_a_word_of_the_address_is_accepted(stack: Stack) -> None:
    email = f"margaret.hamilton.{secrets.token_hex(3)}@example.com"
    response = await stack.register(
        email, f"margaret walks the foggy harbour {secrets.token_hex(2)}"
    )
    assert response.status_code == 202, response.text


# --- change ---------------------------------------------------------------------------------------
async def test_change_password_revokes_other_sessions_and_notifies(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    current_session = await stack.login(email, password)
    other_session = await stack.login(email, password)
    replacement = new_password("changed")

    wrong = await change(stack, current_session, "not my password", replacement)
    assert_error(wrong, 400, "invalid_credentials")
    assert (await get_me(stack, other_session)).status_code == 200  # nothing happened

    mark = stack.sink.last_id
    response = await change(stack, current_session, password, replacement)
    assert response.status_code == 204
    assert response.content == b""

    assert (await get_me(stack, current_session)).status_code == 200
    assert_error(await get_me(stack, other_session), 401, "invalid_token")
    assert_error(await do_refresh(stack, other_session["refresh_token"]), 401, "invalid_token")
    assert (await do_refresh(stack, current_session["refresh_token"])).status_code == 200

    assert_error(await try_login(stack, email, password), 401, "invalid_credentials")
    assert (await try_login(stack, email, replacement)).status_code == 200

    notice = await mail(stack, email, PASSWORD_CHANGED, mark)
    assert "changed" in notice.text.lower()
    assert password not in notice.text
    assert replacement not in notice.text


async def test_change_password_checks_the_new_password(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    tokens = await stack.login(email, password)
    for weak in ("qwertyuiop", "short"):
        response = await change(stack, tokens, password, weak, secret=False)
        assert_error(response, 422, "weak_password")
    local = email.partition("@")[0]
    as_address = await stack.http.post(
        f"{AUTH}/password/change",
        json={"current_password": password, "new_password": local},
        headers=stack.bearer(tokens),
    )
    assert_error(as_address, 422, "weak_password")
    assert (await try_login(stack, email, password)).status_code == 200  # unchanged


async def test_changing_to_the_same_password_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    """It answered 204, ended the other sessions and emailed "password changed" though
    nothing changed.  The same password typed decomposed (NFD) is the same password."""
    password = f"caf\u00e9 au lait {secrets.token_hex(4)}"
    email, _ = await stack.register_and_verify(password=password)
    current_session = await stack.login(email, password)
    other_session = await stack.login(email, password)
    mark = stack.sink.last_id
    for same in (password, unicodedata.normalize("NFD", password)):
        response = await change(stack, current_session, password, same)
        error = assert_error(response, 422, "same_password")
        assert "differ" in error["message"]
    assert (await get_me(stack, other_session)).status_code == 200
    assert (await try_login(stack, email, password)).status_code == 200
    await asyncio.sleep(1.0)  # a notice would have been queued by now; look anyway
    assert not [m for m in stack.sink.messages_to(email) if m.id > mark]


async def test_change_password_needs_a_bearer_token(stack: Stack) -> None:
    response = await stack.http.post(
        f"{AUTH}/password/change",
        json={"current_password": "whatever it is", "new_password": new_password()},
    )
    assert_error(response, 401, "not_authenticated")


async def test_wrong_current_passwords_are_throttled(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    tokens = await stack.login(email, password)
    statuses = []
    for _ in range(8):
        response = await change(stack, tokens, "a wrong guess", new_password())
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "too_many_attempts"
            assert int(response.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {400}, statuses


# --- forgot ---------------------------------------------------------------------------------------
async def test_forgot_answers_the_same_for_known_and_unknown(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    ghost = stack.new_email("ghost")
    mark = stack.sink.last_id
    known, unknown = await forgot(stack, email), await forgot(stack, ghost)
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()

    for address in (email, ghost):
        again = await forgot(stack, address)
        assert_error(again, 429, "cooldown")
        assert 1 <= int(again.headers["Retry-After"]) <= stack.settings.otp_resend_cooldown_seconds

    code = await reset_code_mail(stack, email, mark)
    assert CODE_RE.fullmatch(code)
    # Let the workers finish whatever they were doing, then: nothing went to the ghost.
    await asyncio.sleep(0.5)
    assert not stack.sink.messages_to(ghost)


async def test_forgot_for_an_unverified_account_sends_nothing(stack: Stack) -> None:
    email = stack.new_email("pending")
    mark = stack.sink.last_id
    assert (await stack.register(email, new_password())).status_code == 202
    await stack.wait_for_code(email, after_id=mark)  # the registration code
    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    await asyncio.sleep(1.0)
    assert not [m for m in stack.sink.messages_to(email) if m.id > mark]


async def test_a_new_forgot_after_the_cooldown_kills_the_old_code(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    old = await reset_code_mail(stack, email, mark)
    mark = stack.sink.last_id
    assert (await forgot_after_cooldown(stack, email)).status_code == 202
    new = await reset_code_mail(stack, email, mark)
    replacement = new_password("after-resend")
    if new != old:  # one chance in a million that they are equal
        assert_error(await reset(stack, email, old, replacement), 400, "invalid_otp")
    assert (await reset(stack, email, new, replacement)).status_code == 204
    assert (await try_login(stack, email, replacement)).status_code == 200


# --- reset ----------------------------------------------------------------------------------------
async def test_reset_sets_the_password_revokes_every_session_and_notifies(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    sessions = [await stack.login(email, password) for _ in range(2)]
    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    code = await reset_code_mail(stack, email, mark)
    replacement = new_password("reset")

    assert_error(await reset(stack, email, other_code(code), replacement), 400, "invalid_otp")
    mark = stack.sink.last_id
    response = await reset(stack, email, code, replacement)
    assert response.status_code == 204
    assert response.content == b""
    for tokens in sessions:
        assert_error(await get_me(stack, tokens), 401, "invalid_token")
        assert_error(await do_refresh(stack, tokens["refresh_token"]), 401, "invalid_token")
    assert_error(await try_login(stack, email, password), 401, "invalid_credentials")
    assert (await try_login(stack, email, replacement)).status_code == 200

    notice = await mail(stack, email, PASSWORD_WAS_RESET, mark)
    assert code not in notice.text
    # The code worked once.
    assert_error(await reset(stack, email, code, new_password("again")), 400, "invalid_otp")


async def test_reset_checks_the_new_password(stack: Stack) -> None:
    email, _password = await stack.register_and_verify()
    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    code = await reset_code_mail(stack, email, mark)
    weak = await reset(stack, email, code, "qwertyuiop", secret=False)
    assert_error(weak, 422, "weak_password")
    # The refused request did not spend the code.
    assert (await reset(stack, email, code, new_password())).status_code == 204


async def test_wrong_reset_codes_are_limited(stack: Stack) -> None:
    email, password = await stack.register_and_verify()
    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    code = await reset_code_mail(stack, email, mark)
    for _ in range(stack.settings.otp_max_attempts):
        wrong = await reset(stack, email, other_code(code), new_password())
        assert_error(wrong, 400, "invalid_otp")
    blocked = await reset(stack, email, code, new_password())
    assert_error(blocked, 429, "too_many_attempts")
    assert int(blocked.headers["Retry-After"]) >= 1
    assert (await try_login(stack, email, password)).status_code == 200  # unchanged


async def test_reset_for_an_unknown_address_answers_like_a_wrong_code(stack: Stack) -> None:
    ghost = stack.new_email("ghost")
    for _ in range(stack.settings.otp_max_attempts):
        wrong = await reset(stack, ghost, "123456", new_password(), secret=False)
        assert_error(wrong, 400, "invalid_otp")
    blocked = await reset(stack, ghost, "123456", new_password(), secret=False)
    assert_error(blocked, 429, "too_many_attempts")


async def test_registration_and_reset_codes_are_not_interchangeable(stack: Stack) -> None:
    # A pending account's registration code cannot reset its password...
    pending = stack.new_email("pending")
    mark = stack.sink.last_id
    assert (await stack.register(pending, new_password())).status_code == 202
    registration_code = await stack.wait_for_code(pending, after_id=mark)
    response = await reset(stack, pending, registration_code, new_password())
    assert_error(response, 400, "invalid_otp")
    assert (await verify(stack, pending, registration_code)).status_code == 200  # still valid

    # ...and an active account's reset code cannot verify a registration.
    mark = stack.sink.last_id
    assert (await forgot(stack, pending)).status_code == 202
    reset_code = await reset_code_mail(stack, pending, mark)
    assert_error(await verify(stack, pending, reset_code), 400, "invalid_otp")
    assert (await reset(stack, pending, reset_code, new_password())).status_code == 204


async def _plant_code(stack: Stack, email: str, purpose: str) -> str:
    """A live code of ``purpose`` written straight into the store, as a workflow would."""
    vault = CodeVault(stack.settings.otp_key)
    async with stack.db.session() as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
        assert user_id is not None
        delivery = await issue_code(
            session,
            vault,
            user_id=user_id,
            email=email,
            purpose=purpose,
            kind=purpose,
            workflow_id=f"planted-{purpose}-{user_id}",
            length=6,
            ttl_seconds=600,
        )
        assert delivery.sealed_code is not None  # issue_code seals every code it issues
        code = vault.unseal(delivery.id, delivery.sealed_code)
    stack.remember(code)
    return code


async def test_a_live_code_of_the_other_purpose_is_refused(stack: Stack) -> None:
    """Both codes live for the same account at once: only the purpose decides."""
    active, _ = await stack.register_and_verify()
    register_code = await _plant_code(stack, active, "register")
    assert_error(await reset(stack, active, register_code, new_password()), 400, "invalid_otp")

    pending = stack.new_email("pending")
    mark = stack.sink.last_id
    assert (await stack.register(pending, new_password())).status_code == 202
    real_code = await stack.wait_for_code(pending, after_id=mark)
    planted = await _plant_code(stack, pending, "password_reset")
    if planted != real_code:
        assert_error(await verify(stack, pending, planted), 400, "invalid_otp")
    assert (await verify(stack, pending, real_code)).status_code == 200

    async with stack.db.session() as session:
        purposes = set(
            await session.scalars(select(OtpDelivery.purpose).where(OtpDelivery.email == pending))
        )
    assert purposes == {"register", "password_reset"}


# --- the whole path -------------------------------------------------------------------------------
async def test_full_account_path(stack: Stack) -> None:
    """register -> verify -> login -> me -> refresh -> reuse of the old refresh (session
    dies) -> login -> change password (others die, notice) -> forgot -> code -> reset
    (all die) -> login with the new password."""
    email = stack.new_email("journey")
    first_password = new_password("first")
    mark = stack.sink.last_id
    registered = await stack.register(email, first_password, full_name="Jo Journey")
    assert registered.status_code == 202
    user_id = registered.json()["user_id"]
    code = await stack.wait_for_code(email, after_id=mark)
    assert (await stack.wait_for_mail(email, after_id=mark)).rcpt_tos == [email]
    verified = await verify(stack, email, code)
    assert verified.status_code == 200
    assert verified.json() == {"status": "active"}

    session_a = await stack.login(email, first_password)
    me = await get_me(stack, session_a)
    assert me.status_code == 200
    assert me.json()["id"] == user_id
    assert me.json()["roles"] == ["USER"]

    rotated = await do_refresh(stack, session_a["refresh_token"])
    assert rotated.status_code == 200
    session_a2 = rotated.json()
    assert (await get_me(stack, session_a2)).status_code == 200
    await end_refresh_grace(stack)
    assert_error(await do_refresh(stack, session_a["refresh_token"]), 401, "invalid_token")
    assert_error(await get_me(stack, session_a2), 401, "invalid_token")  # the session died
    assert_error(await do_refresh(stack, session_a2["refresh_token"]), 401, "invalid_token")

    session_b = await stack.login(email, first_password)
    session_c = await stack.login(email, first_password)
    second_password = new_password("second")
    mark = stack.sink.last_id
    assert (await change(stack, session_b, first_password, second_password)).status_code == 204
    assert (await get_me(stack, session_b)).status_code == 200
    assert_error(await get_me(stack, session_c), 401, "invalid_token")
    await mail(stack, email, PASSWORD_CHANGED, mark)

    mark = stack.sink.last_id
    assert (await forgot(stack, email)).status_code == 202
    reset_code = await reset_code_mail(stack, email, mark)
    third_password = new_password("third")
    mark = stack.sink.last_id
    assert (await reset(stack, email, reset_code, third_password)).status_code == 204
    assert_error(await get_me(stack, session_b), 401, "invalid_token")
    assert_error(await do_refresh(stack, session_b["refresh_token"]), 401, "invalid_token")
    await mail(stack, email, PASSWORD_WAS_RESET, mark)

    for stale in (first_password, second_password):
        assert_error(await try_login(stack, email, stale), 401, "invalid_credentials")
    final = await try_login(stack, email, third_password)
    assert final.status_code == 200
    claims = jwt.decode(final.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id
    assert (await get_me(stack, final.json())).json()["email"] == email
