"""Routes of ``/api/v1/admin``; every route declares its permission guard."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
