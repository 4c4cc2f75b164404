"""Unit tests for authflow.security.password_policy."""

from __future__ import annotations

import secrets
import string
import unicodedata
from importlib.resources import files

import pytest

from authflow.security import password_policy
from authflow.security.password_policy import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordRejected,
    check_password,
    common_passwords,
    is_common,
)
from authflow.settings import InsecureConfiguration, Settings

LIST_FILE = files("authflow.data").joinpath("common-passwords.txt")


def _rejection(password: str, *, email: str | None = None) -> PasswordRejected:
    with pytest.raises(PasswordRejected) as excinfo:
        check_password(password, email=email)
    assert excinfo.value.code == "weak_password"
    return excinfo.value


# --- the shipped list -------------------------------------------------------


def test_limits_are_the_documented_ones() -> None:
    assert MIN_LENGTH == 8
    assert MAX_LENGTH == 256


def test_list_file_has_at_least_10000_distinct_lowercase_entries_in_rank_order() -> None:
    lines = LIST_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 10_000
    assert len(set(lines)) == len(lines)
    assert all(line and line == line.lower() and line == line.strip() for line in lines)
    # most common first
    assert lines[:4] == ["123456", "password", "12345678", "qwerty"]


def test_list_file_is_at_most_one_megabyte() -> None:
    assert len(LIST_FILE.read_bytes()) <= 1_000_000


def test_loaded_list_matches_the_file_and_is_cached() -> None:
    loaded = common_passwords()
    assert len(loaded) >= 10_000
    assert len(loaded) == len(LIST_FILE.read_text(encoding="utf-8").splitlines())
    assert common_passwords() is loaded
    assert password_policy.common_passwords.cache_info().currsize == 1


# --- common passwords -------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "123456", "qwerty"])
def test_top_passwords_are_common(password: str) -> None:
    assert is_common(password)


@pytest.mark.parametrize(
    "password",
    ["password", "PASSWORD", "PassWord", "12345678", "qwertyuiop", "iloveyou", "Sunshine"],
)
def test_common_passwords_of_allowed_length_are_refused_ignoring_case(password: str) -> None:
    rejected = _rejection(password)
    assert "common" in rejected.reason
    assert str(rejected) == rejected.reason


def test_short_common_passwords_are_refused_too() -> None:
    # "123456" and "qwerty" fail the length rule before the list is consulted
    for password in ("123456", "qwerty"):
        _rejection(password)


def test_is_common_is_false_for_an_uncommon_password() -> None:
    assert not is_common("violet-harbour-tractor-42-quietly")


# --- accepted passwords -----------------------------------------------------


def test_long_random_passphrase_is_accepted() -> None:
    check_password("correct horse battery staple, but with 7 more words of mine")
    check_password("t7#Vq9!pL2@zR4$w", email="someone@example.com")


@pytest.mark.parametrize(
    "password", ["ñandú-çà-日本語-パス", "пароль-надёжный-2024", "🔐🦊🌲🚲🎻🧭🪁🍵"]
)
def test_unicode_passwords_are_accepted(password: str) -> None:
    check_password(password)


def test_no_composition_rules() -> None:
    # all lowercase letters, no digit or symbol: fine when long and uncommon
    check_password("lanternsmoothbicycle")


# --- length -----------------------------------------------------------------


def test_seven_characters_are_refused() -> None:
    rejected = _rejection("xK9!mQ2")
    assert "8" in rejected.reason


def test_eight_characters_are_accepted() -> None:
    check_password("xK9!mQ2z")


VARIED_256 = ((string.ascii_letters + string.digits) * 5)[:256]


def test_256_characters_are_accepted() -> None:
    check_password(VARIED_256)


def test_257_characters_are_refused_not_truncated() -> None:
    rejected = _rejection("ab" * 128 + "c")
    assert "256" in rejected.reason


def test_empty_password_is_refused() -> None:
    _rejection("")


# --- NFC --------------------------------------------------------------------


def test_length_is_counted_after_nfc() -> None:
    decomposed = "e\u0301" * 4  # 8 code points, 4 characters once composed
    assert len(decomposed) == 8
    assert len(unicodedata.normalize("NFC", decomposed)) == 4
    _rejection(decomposed)


def test_decomposed_256_characters_are_accepted() -> None:
    decomposed = "".join(f"{c}\u0301" for c in ("aeiou" * 52)[:256])  # 512 raw, 256 after NFC
    check_password(decomposed)
    _rejection(decomposed + "e\u0301")


def test_composed_and_decomposed_forms_are_equivalent() -> None:
    composed = "ñandú-çà-日本語-パス"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    check_password(composed)
    check_password(decomposed)
    assert is_common(composed) == is_common(decomposed)


def test_email_comparison_uses_nfc() -> None:
    composed_email = "josé.müller@example.com"
    local_decomposed = unicodedata.normalize("NFD", "josé.müller")
    _rejection(local_decomposed, email=composed_email)


# --- email ------------------------------------------------------------------


def test_password_equal_to_email_is_refused() -> None:
    rejected = _rejection("Alice.Smith@Example.com", email="alice.smith@example.com")
    assert "email" in rejected.reason


def test_password_equal_to_email_local_part_is_refused_ignoring_case() -> None:
    _rejection("ALICE.SMITH", email="alice.smith@example.com")


def test_password_containing_the_email_is_not_refused_for_that() -> None:
    check_password("alice.smith-and-a-long-tail", email="alice.smith@example.com")


def test_same_password_without_email_is_accepted() -> None:
    check_password("alice.smith")


@pytest.mark.parametrize(
    "password",
    ["aaaaaaaa", "abcdefgh", "12345678", "qwertyui", "Passw0rd!", " " * 8, "abababab", "hgfedcba"],
)
def test_repetitive_sequential_and_decorated_common_passwords_are_refused(password: str) -> None:
    _rejection(password)


def test_passwords_built_on_the_address_or_the_name_are_refused() -> None:
    _rejection_for = _rejection
    with pytest.raises(PasswordRejected):
        check_password("margaret1987", email="margaret@example.com")
    with pytest.raises(PasswordRejected):
        check_password("HamiltonRules", email="m@example.com", name="Margaret Hamilton")
    check_password("correct horse battery", email="margaret@example.com", name="Margaret")
    assert _rejection_for("aaaaaaaa").code == "weak_password"


# The audit's reproductions: the local part's own words, not only the whole local part.
@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("margaret.hamilton", "margaret.hamilton.k3x9@example.com"),
        ("MargaretHamilton", "margaret.hamilton.k3x8@example.com"),
        ("jsmithers2026", "jsmithersab12y@example.com"),
        ("jonathan.smithers", "jonathan.smithers-ab12@example.com"),
        ("Hamilton_Margaret!", "margaret.hamilton.k3x9@example.com"),
        ("margaret1987!", "margaret.hamilton.k3x9@example.com"),
        ("2026-hamilton-2026", "margaret.hamilton.k3x9@example.com"),
        ("smithers.jonathan.77", "jonathan.smithers-ab12@example.com"),
    ],
)
def test_passwords_built_on_the_words_of_the_local_part_are_refused(
    password: str, email: str
) -> None:
    rejected = _rejection(password, email=email)
    assert "email" in rejected.reason


def test_passwords_built_on_the_words_of_the_name_are_refused() -> None:
    for password in ("luther-king-2026", "MartinLutherKing", "king.martin.1968"):
        with pytest.raises(PasswordRejected):
            check_password(password, email="mlk@example.com", name="Martin Luther King, Jr.")


@pytest.mark.parametrize(
    ("password", "email"),
    [
        # an unrelated passphrase that happens to hold a word of the address
        ("margaret walks the foggy harbour", "margaret.hamilton.k3x9@example.com"),
        ("jonathan-plays-cello-at-dawn", "jonathan.smithers-ab12@example.com"),
        ("annotated orbit 42", "ann.lee@example.com"),
        # the domain is not the person's word
        ("example2026!", "margaret.hamilton.k3x9@example.com"),
        # two-letter words of an address occur by chance in any password
        ("bolivia-road-trip", "bo.li@example.com"),
    ],
)
def test_a_password_that_only_contains_a_word_of_the_address_is_accepted(
    password: str, email: str
) -> None:
    check_password(password, email=email)


@pytest.mark.parametrize("secret", ["", "a" * 32, "changeme", "0123456789" * 2, "ab" * 40])
def test_weak_secrets_are_refused_at_start_in_every_mode(secret: str) -> None:
    for environment in ("production", "development", "test"):
        with pytest.raises(InsecureConfiguration, match="JWT_SECRET"):
            Settings(environment=environment, jwt_secret=secret)


def test_a_weak_otp_secret_is_refused() -> None:
    with pytest.raises(InsecureConfiguration, match="OTP_SECRET"):
        Settings(jwt_secret=secrets.token_urlsafe(48), otp_secret="b" * 40)
