"""Password strength policy: length limits and a refusal list of common passwords.

The rules follow NIST SP 800-63B: a length window, no composition rules (no
"one digit, one symbol"), and a refusal of passwords found in breach corpora.

* Length is counted in Unicode code points after NFC normalisation, so "é"
  typed as one precomposed character or as "e" plus a combining accent counts
  once.  A password is never truncated: one over ``MAX_LENGTH`` is refused.
* A password is refused when it is, case-insensitively, one of the common
  passwords shipped in ``authflow/data/common-passwords.txt`` (see the README
  beside it for its origin).
* A password is refused when it is built on the account's own email address or
  name (the contract's rule): the address, its local part or the name is most of
  it, or what is left once the digits around it, the separators and the words of
  the address and the name are taken out is under ``PERSONAL_REMAINDER`` letters
  ("margaret.hamilton" or "HamiltonMargaret1987" for
  margaret.hamilton.k3x9@example.com, "jsmithers2026" for jsmithersab12y@...).
  An unrelated passphrase that merely contains one of those words keeps the rest
  of its letters and is accepted.

The list is read once, on first use, through ``importlib.resources`` and kept
in memory as a frozenset.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib.resources import files
from typing import Final

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "REJECTION_CODE",
    "PasswordRejected",
    "check_password",
    "common_passwords",
    "is_common",
]

MIN_LENGTH: Final = 8
MAX_LENGTH: Final = 256
REJECTION_CODE: Final = "weak_password"
# A password built on the account's words keeps fewer letters than this once they are
# taken out ("margaret.hamilton" keeps none, "margaret-in-the-garden" keeps nine).
PERSONAL_REMAINDER: Final = 4
# Words of the address or the name shorter than this are not taken out: two letters
# ("jr", "k3x9"'s "k") occur by chance in any passphrase.
PERSONAL_WORD_MIN: Final = 3

_DATA_PACKAGE: Final = "authflow.data"
_COMMON_PASSWORDS_FILE: Final = "common-passwords.txt"


class PasswordRejected(Exception):
    """The password does not meet the policy; ``reason`` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.code: str = REJECTION_CODE
        self.reason: str = reason


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fold(text: str) -> str:
    """The form two strings are compared in, case-insensitively."""
    return _nfc(text).casefold()


@cache
def common_passwords() -> frozenset[str]:
    """The refusal list, case-folded; read from the package data once."""
    text = files(_DATA_PACKAGE).joinpath(_COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    return frozenset(_fold(line) for line in text.splitlines() if line)


def is_common(password: str) -> bool:
    """Whether ``password`` is, ignoring case, one of the common passwords."""
    return _fold(password) in common_passwords()


# Keyboard rows and alphabets a "sequential" password walks along (either way).
_SEQUENCES: Final = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789012345678901234567890",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
# Common substitutions undone before the common-password check ("Passw0rd!" is "password").
_LEET: Final = str.maketrans(
    {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)


def _is_repetitive(folded: str) -> bool:
    """One short unit repeated ("aaaaaaaa", "abababab", "123123123") or blank."""
    if not folded.strip():
        return True
    for size in range(1, 4):
        unit = folded[:size]
        if len(folded) >= 2 * size and (unit * (len(folded) // size + 1)).startswith(folded):
            return True
    return len(set(folded)) <= 2


def _is_sequential(folded: str) -> bool:
    compact = folded.replace(" ", "")
    return any(compact in seq or compact in seq[::-1] for seq in _SEQUENCES)


def _without_decoration(folded: str) -> str:
    """The word under common decorations: substitutions undone, trailing digits and
    symbols dropped ("Passw0rd!" -> "password", "dragon2024!" -> "dragon")."""
    stripped = folded.translate(_LEET).rstrip("0123456789!?.*#%&+-_= ")
    return stripped or folded


def check_password(password: str, *, email: str | None = None, name: str | None = None) -> None:
    """Raise :class:`PasswordRejected` unless ``password`` meets the policy.

    ``email``, when given, is the account's address, and ``name`` its owner's name:
    the password may not be built on them (the address, its local part or the
    name, ignoring case, is not the whole password nor most of it; nor is the
    password made of their words, see ``_built_from_personal_words``).
    """
    length = len(_nfc(password))
    if length < MIN_LENGTH:
        raise PasswordRejected(f"The password must be at least {MIN_LENGTH} characters long.")
    if length > MAX_LENGTH:
        raise PasswordRejected(f"The password must be at most {MAX_LENGTH} characters long.")
    folded = _fold(password)
    if is_common(password) or _without_decoration(folded) in common_passwords():
        raise PasswordRejected("This password is too common; choose a less predictable one.")
    if _is_repetitive(folded) or _is_sequential(folded):
        raise PasswordRejected(
            "This password is a repetition or a sequence; choose a less predictable one."
        )
    personal = [part for part in _personal_words(email, name) if len(part) >= 4]
    if any(part in folded and len(part) * 2 >= len(folded.replace(" ", "")) for part in personal):
        raise PasswordRejected("The password must not be built on your email address or name.")
    if email:
        address = _fold(email.strip())
        local_part = address.rpartition("@")[0] if "@" in address else address
        if folded in {address, local_part}:
            raise PasswordRejected(
                "The password must not be your email address or the part before its @."
            )
    if _built_from_personal_words(folded, email, name):
        raise PasswordRejected("The password must not be built on your email address or name.")


def _personal_words(email: str | None, name: str | None) -> list[str]:
    words: list[str] = []
    if email:
        address = _fold(email.strip())
        words += [address, address.rpartition("@")[0] or address]
    if name:
        folded = _fold(name.strip())
        words += [folded, folded.replace(" ", ""), *folded.split()]
    return words


# Runs of letters and runs of digits: "margaret.hamilton.k3x9" -> margaret, hamilton, k, 3,
# x, 9; "jsmithersab12y" -> jsmithersab, 12, y.
_WORD: Final = re.compile(r"[^\W\d_]+|\d+")


def _built_from_personal_words(folded: str, email: str | None, name: str | None) -> bool:
    """Whether the password, separators and surrounding digits left out, is a run of the
    local part or the name ("jsmithers" of "jsmithersab12y"), or their words put together
    with under ``PERSONAL_REMAINDER`` letters of its own ("hamiltonmargaret", "margaret77x").

    Only the local part of the address counts: the domain ("gmail", a company name) is
    not the person's own word."""
    sources: list[str] = []
    if email:
        address = _fold(email.strip())
        sources.append(address.rpartition("@")[0] or address)
    if name:
        sources.append(_fold(name.strip()))
    if not sources:
        return False
    core = "".join(_WORD.findall(folded)).strip("0123456789")
    if len(core) < PERSONAL_REMAINDER:
        return False
    if any(core in "".join(_WORD.findall(source)) for source in sources):
        return True
    words = {w for s in sources for w in _WORD.findall(s) if not w.isdigit()}
    rest = core
    for word in sorted((w for w in words if len(w) >= PERSONAL_WORD_MIN), key=len, reverse=True):
        rest = rest.replace(word, " ")
    taken = len(core) - len(rest.replace(" ", ""))
    return taken >= PERSONAL_REMAINDER and sum(c.isalpha() for c in rest) < PERSONAL_REMAINDER
