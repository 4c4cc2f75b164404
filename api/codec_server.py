"""Temporal's remote codec endpoint, for the Web UI: ``POST /codec/decode`` and
``/codec/encode`` with ``{"payloads": [...]}`` in Temporal's JSON form.

Only admins may use it (and, in ``authflow dev``, the browser on this machine); the
Temporal UI's origin gets the CORS headers it needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import DbSession, ServicesDep, bearer_scheme, get_principal
from authflow.codec import EncryptionCodec, UnknownCodecKey
from authflow.errors import AppError, Forbidden
from authflow.policies import ADMIN_ROLE

PREFIX = "/codec"
router = APIRouter(prefix=PREFIX, tags=["operations"], include_in_schema=False)
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


class BadPayloads(AppError):
    status, code = 400, "bad_payloads"
    default_message = 'The body must be {"payloads": [...]} in Temporal\'s JSON form.'


async def codec_caller(
    request: Request,
    services: ServicesDep,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Admins only; in development the UI on this machine needs no token."""
    settings = services.settings
    host = request.client.host if request.client else ""
    if credentials is None and settings.environment == "development" and host in _LOCAL_HOSTS:
        return
    principal = await get_principal(services, db, credentials)
    if ADMIN_ROLE not in principal.role_names:
        raise Forbidden("Only administrators may decode workflow payloads.")


CodecCaller = Annotated[None, Depends(codec_caller)]


@router.post("/decode")
async def decode(request: Request, services: ServicesDep, _: CodecCaller) -> Response:
    codec: EncryptionCodec = services.temporal.data_converter.payload_codec  # type: ignore[assignment]
    return await _transform(request, codec.decode)


@router.post("/encode")
async def encode(request: Request, services: ServicesDep, _: CodecCaller) -> Response:
    codec: EncryptionCodec = services.temporal.data_converter.payload_codec  # type: ignore[assignment]
    return await _transform(request, codec.encode)


async def _transform(request: Request, operation: Any) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise BadPayloads() from exc
    try:
        result = Payloads(payloads=await operation(list(payloads.payloads)))
    except (UnknownCodecKey, ValueError) as exc:
        raise BadPayloads("A payload could not be decoded with the configured keys.") from exc
    return Response(json_format.MessageToJson(result), media_type="application/json")
