"""Search keys, slugs and Markdown sanitising of the course domain (pure functions)."""

from __future__ import annotations

from authflow.courses.markdown import render
from authflow.courses.text import like_pattern, normalise, slugify, tags_key


def test_normalise_is_case_and_accent_insensitive() -> None:
    assert normalise("  Crème  BRÛLÉE ") == "creme brulee"
    assert normalise("Straße") == "strasse"
    assert normalise("ﬁne") == "fine"


def test_slugs_and_patterns() -> None:
    assert slugify("Éclair: Baking 101!") == "eclair-baking-101"
    assert slugify("!!!") == "course"
    assert like_pattern("100%_x") == "%100\\%\\_x%"
    assert tags_key(["Food", "Dessert"]) == "|food|dessert|"


def test_markdown_is_sanitised() -> None:
    html = render(
        "<script>x()</script><img src=x onerror=y()>[a](javascript:z()) "
        '<a href="vbscript:x">v</a> <iframe src="https://x"></iframe>\n\n**ok**'
    )
    lowered = html.lower()
    for bad in ("<script", "onerror", "javascript:", "vbscript:", "<iframe"):
        assert bad not in lowered.replace("[a](javascript:z())", ""), bad
    assert "<strong>ok</strong>" in html
