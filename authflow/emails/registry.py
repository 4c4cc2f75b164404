"""The registry of email types: one declaration each, unique names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from authflow.policies import EMAIL_POLICIES, EmailKind, EmailPolicy, OtpPurpose, PreferenceCategory

# (No ``resolve()``: workflow code imports this module inside the SDK sandbox.)
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"


class UnknownEmailType(LookupError):
    """A name that no declaration carries (an old run's, or a typo in data)."""


@dataclass(frozen=True)
class EmailType:
    """One email: what it is called, where it is sent from, how it looks.

    ``subject`` is a Jinja2 template like the bodies; the bodies are the files
    ``<templates>/<name>.txt`` and ``<templates>/<name>.html`` (HTML autoescaped).
    ``code``: the email carries the one-time code of this purpose (unsealed from the
    delivery record by the send activity; the code never travels through Temporal).
    """

    name: str
    kind: EmailKind
    subject: str
    opt_out: PreferenceCategory | None = None
    code: OtpPurpose | None = None
    templates: Path = BUILTIN_TEMPLATES

    @property
    def policy(self) -> EmailPolicy:
        return EMAIL_POLICIES[self.kind]

    @property
    def task_queue(self) -> str:
        return self.policy.task_queue

    @property
    def text_template(self) -> Path:
        return self.templates / f"{self.name}.txt"

    @property
    def html_template(self) -> Path:
        return self.templates / f"{self.name}.html"


_REGISTRY: dict[str, EmailType] = {}


def declare(email: EmailType) -> EmailType:
    """Add a declaration; a second one of the same name is a mistake, refused at import."""
    known = _REGISTRY.get(email.name)
    if known is not None and known != email:
        raise ValueError(f"email type {email.name!r} is declared twice")
    if email.code is not None and email.opt_out is not None:
        raise ValueError(f"{email.name!r}: a code email can never be turned off")
    _REGISTRY[email.name] = email
    return email


def email_type(name: str) -> EmailType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEmailType(f"no email type is declared as {name!r}") from None


def declared() -> tuple[EmailType, ...]:
    return tuple(_REGISTRY.values())


def code_email(purpose: OtpPurpose | str) -> EmailType:
    """The email that carries the codes of this purpose."""
    for email in _REGISTRY.values():
        if email.code == purpose:
            return email
    raise UnknownEmailType(f"no email carries codes of purpose {purpose!r}")
