"""Every email the platform sends, declared once (see docs/architecture.md, "Add an email
kind").

An email type names its kind (the contract's queue, rate and retries, from
``authflow.policies``), its subject and its two template files (text and HTML, Jinja2),
and the preference that may turn it off (None: codes and security notices, which can
never be turned off and never carry ``List-Unsubscribe``).  Code refers to the
declarations themselves (``emails.ACCOUNT_APPROVED``), never to free strings: a typo
fails at import.

This package imports only the standard library and ``authflow.policies``, so workflows
may import it too; rendering is ``authflow.emails.rendering`` (Jinja2), imported apart.
"""

from authflow.emails.catalog import (
    ACCOUNT_APPROVED,
    ANNOUNCEMENT,
    PASSWORD_CHANGED,
    PASSWORD_RESET_CODE,
    PASSWORD_RESET_DONE,
    REGISTER_CODE,
)
from authflow.emails.registry import (
    BUILTIN_TEMPLATES,
    EmailType,
    UnknownEmailType,
    code_email,
    declare,
    declared,
    email_type,
)

__all__ = [
    "ACCOUNT_APPROVED",
    "ANNOUNCEMENT",
    "BUILTIN_TEMPLATES",
    "PASSWORD_CHANGED",
    "PASSWORD_RESET_CODE",
    "PASSWORD_RESET_DONE",
    "REGISTER_CODE",
    "EmailType",
    "UnknownEmailType",
    "code_email",
    "declare",
    "declared",
    "email_type",
]
