"""The console's stylesheet and scripts, served from the templates folder (so they ship
with the package) under a fixed list of names."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .web import PREFIX, TEMPLATES_DIR, ConsoleRoute, PageError

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
}


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise PageError(404, "No such file.")
    body = (TEMPLATES_DIR / "assets" / name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})
