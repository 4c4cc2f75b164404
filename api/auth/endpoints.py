"""Routes of ``/api/v1/auth`` (see ``shared/API.md``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from api.auth import passwords, registration, sessions
from api.auth.schemas import (
    Accepted,
    ChangePasswordRequest,
    EmailRequest,
    LoginRequest,
    MeResponse,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    SessionItem,
    SessionList,
    TokenPair,
    VerifyRequest,
    VerifyResponse,
)
from api.deps import (
    CurrentPrincipal,
    DbSession,
    PathId,
    ServicesDep,
    client_ip,
    require_workflows,
)
from api.openapi import NO_STORE_HEADERS, no_store, responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
# Routes whose work needs Temporal after the commit: 503 before anything is written
# when it is down.  Login, refresh, logout, me and sessions never depend on it.
NEEDS_WORKFLOWS = [Depends(require_workflows)]


async def _never_stored(response: Response) -> None:
    """The answer carries tokens: no cache may keep it (``api.openapi.NO_STORE_HEADERS``)."""
    response.headers.update(NO_STORE_HEADERS)


# Every route whose answer carries an access or refresh token.
CARRIES_TOKENS = [Depends(_never_stored)]


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegisterResponse,
    responses=responses(409, 422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def register(body: RegisterRequest, db: DbSession, services: ServicesDep) -> RegisterResponse:
    """Create a pending account; the verification code follows by email."""
    user = await registration.register(db, services, body)
    return RegisterResponse(user_id=user.id)


@router.post(
    "/register/resend-otp",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def resend_otp(body: EmailRequest, db: DbSession, services: ServicesDep) -> Accepted:
    """Send a fresh code (the previous one stops working). Same answer for any address."""
    await registration.resend(db, services, body.email)
    return Accepted()


@router.post(
    "/register/verify",
    response_model=VerifyResponse,
    responses=responses(400, 422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def verify(
    body: VerifyRequest, request: Request, db: DbSession, services: ServicesDep
) -> VerifyResponse:
    new_status = await registration.verify(
        db, services, body.email, body.otp, ip=client_ip(request)
    )
    return VerifyResponse(status=new_status)


@router.post(
    "/login",
    response_model=TokenPair,
    responses={**no_store("A new session's tokens"), **responses(401, 403, 422, 429)},
    dependencies=CARRIES_TOKENS,
)
async def login(
    body: LoginRequest, request: Request, db: DbSession, services: ServicesDep
) -> TokenPair:
    return await sessions.login(
        db,
        services,
        body.email,
        body.password,
        ip=client_ip(request),
        agent=request.headers.get("user-agent"),
    )


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses={**no_store("The session's new tokens"), **responses(401, 422, 429)},
    dependencies=CARRIES_TOKENS,
)
async def refresh(
    body: RefreshRequest, request: Request, db: DbSession, services: ServicesDep
) -> TokenPair:
    """Rotate: the presented refresh token stops working (after a 10 s grace in which it
    answers the same new pair); reusing it later revokes the session."""
    return await sessions.refresh(db, services, body.refresh_token, ip=client_ip(request))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 422))
async def logout(body: RefreshRequest, principal: CurrentPrincipal, db: DbSession) -> Response:
    await sessions.logout(db, principal.session_id, principal.user.id, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeResponse, responses=responses(401))
async def me(principal: CurrentPrincipal) -> MeResponse:
    user = principal.user
    return MeResponse(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        status=user.status,
        roles=principal.role_names,
        permissions=sorted(principal.permissions),
    )


@router.post(
    "/password/change",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def change_password(
    body: ChangePasswordRequest,
    request: Request,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
) -> Response:
    """Every other session is revoked; a notification email follows.  A new password
    equal to the current one is 422 `same_password` (nothing would change); a weak one
    is 422 `weak_password`."""
    await passwords.change_password(
        db, services, principal, body.current_password, body.new_password, ip=client_ip(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def forgot_password(body: EmailRequest, db: DbSession, services: ServicesDep) -> Accepted:
    """Always 202; a reset code follows when the address belongs to an active account."""
    await passwords.forgot_password(db, services, body.email)
    return Accepted()


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 422, 429, 503),
    dependencies=NEEDS_WORKFLOWS,
)
async def reset_password(
    body: ResetPasswordRequest, request: Request, db: DbSession, services: ServicesDep
) -> Response:
    """Sets the password and revokes every session; does not sign in."""
    await passwords.reset_password(
        db, services, body.email, body.otp, body.new_password, ip=client_ip(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions", response_model=SessionList, responses=responses(401))
async def list_sessions(
    principal: CurrentPrincipal, db: DbSession, services: ServicesDep
) -> SessionList:
    """The caller's live sessions, newest first; ``current`` marks this one."""
    rows = await sessions.list_sessions(db, services, principal.user.id)
    return SessionList(
        items=[
            SessionItem(
                id=row.id,
                created_at=row.created_at,
                last_used_at=row.last_used_at or row.created_at,
                ip=row.ip,
                user_agent=row.user_agent,
                current=row.id == principal.session_id,
            )
            for row in rows
        ]
    )


@router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 404)
)
async def revoke_session(
    session_id: PathId, principal: CurrentPrincipal, db: DbSession
) -> Response:
    """That session's access and refresh tokens stop working at once."""
    await sessions.revoke_own_session(db, principal.user.id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
