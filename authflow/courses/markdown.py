"""Markdown rendered to HTML and sanitised, server-side.

markdown-it-py renders (CommonMark, raw HTML allowed in the source as authors expect);
nh3 (Rust's ammonia) then keeps only a fixed set of tags and attributes: no script, no
event handler, no ``javascript:`` link.  A hand-written sanitiser is never enough.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
    "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "code": {"class"},
    "td": {"align"},
    "th": {"align"},
}


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


# Rendering is a pure function of the source, and a lesson is read by every learner of
# its course far more often than it is edited: the latest sources' HTML is kept (a
# lesson read cost about a sixth of its CPU in rendering).  Bounded by entries: at most
# this many sources, each at most ``api.courses.schemas.MAX_MARKDOWN`` characters.
RENDERED_KEPT = 128


@lru_cache(maxsize=RENDERED_KEPT)
def render(source: str) -> str:
    html = _renderer().render(source or "")
    return str(
        nh3.clean(
            html,
            tags=_TAGS,
            attributes=_ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer nofollow",
        )
    )
