"""Email addresses as the product compares them: NFKC-normalised, the local part and
the domain lower-cased, the domain in its IDNA (ASCII) form.  One function, used by the
API's request models and by ``migrate`` for the bootstrap admin, so an address is
stored in the one form every sign-in produces."""

from __future__ import annotations

import unicodedata

import email_validator
from email_validator import EmailNotValidError, validate_email

# email-validator refuses the reserved ".local" and ".test" names, but `authflow dev`
# seeds its admin as admin@authflow.local and the tests use *.test; both must be able
# to sign in.  (The library documents removing names from this list for such uses.
# ".invalid", ".localhost", ".onion" and ".arpa" stay refused.)
for _name in ("local", "test"):
    if _name in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_name)


class InvalidAddress(ValueError):
    pass


def has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def canonical_email(value: str) -> str:
    """The address's one stored form; :class:`InvalidAddress` when it is not one."""
    # NFKC first: a full-width or otherwise compatible look-alike (full-width "alice")
    # is the same address as its plain form, never a second account.  Spaces around it
    # are what a paste or an autofill leaves: not part of any address.
    value = unicodedata.normalize("NFKC", value).strip(" ")
    if has_control_chars(value) or len(value) > 254:
        raise InvalidAddress(value)
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(value) from exc
    # The domain in its IDNA (ASCII) form, lower-cased; the local part compared
    # case-insensitively as users expect.
    domain = (result.ascii_domain or result.domain).lower()
    return f"{result.local_part.lower()}@{domain}"
