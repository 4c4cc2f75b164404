"""Rendering an email from its declaration's template files: the send activity's and the
admin console's preview's one renderer (so a preview is what recipients get).

Jinja2, HTML autoescaped, a missing variable an error rather than an empty string.  Not
imported by ``authflow.emails`` itself: workflows import that package and must not load
Jinja2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from authflow.emails.registry import BUILTIN_TEMPLATES, EmailType


class MessageBuildError(ValueError):
    """This email cannot be written (a broken template, an address no encoding can carry):
    no retry will change that."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=32)
def _environment(templates: Path) -> jinja2.Environment:
    # A declaration's own folder first, then the built-in one (its layout).
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(templates), jinja2.FileSystemLoader(BUILTIN_TEMPLATES)]
    )
    return jinja2.Environment(
        loader=loader,
        # HTML files are autoescaped; text files and the subject are plain text.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=128)
def _subject_template(templates: Path, subject: str) -> jinja2.Template:
    """A subject line compiled once (the files' templates are kept by Jinja2's own
    cache; a string's is compiled again on every ``from_string``)."""
    return _environment(templates).from_string(subject)


def render(email: EmailType, context: Mapping[str, object]) -> Rendered:
    """The subject, text and HTML of one email; ``MessageBuildError`` if it cannot be."""
    try:
        environment = _environment(email.templates)
        subject = _subject_template(email.templates, email.subject).render(context)
        values = {"unsubscribe_url": None, "name": None, **context, "subject": subject}
        text = environment.get_template(f"{email.name}.txt")
        html = environment.get_template(f"{email.name}.html")
        return Rendered(subject.strip(), text.render(values), html.render(values))
    except jinja2.TemplateError as exc:
        raise MessageBuildError(f"{email.name}: {type(exc).__name__}: {exc}") from None
