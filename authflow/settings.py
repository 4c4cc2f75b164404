"""One settings class, read from the environment (and an optional ``.env``).

Every variable in the public contract (``shared/API.md``) is a field here; the names
are the contract's. Extra knobs (codec keys, per-queue overrides) are additions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from authflow.policies import EmailKind, email_kind_named

MIN_SECRET_BYTES = 32
_PLACEHOLDERS = {"changeme", "change-me", "secret", "dev", "changethis"}


class InsecureConfiguration(RuntimeError):
    """Raised at start-up when a production process would run with a weak secret."""


# A secret with fewer different characters than this is not random ("a" * 32).
MIN_SECRET_DISTINCT = 10


def _require_strong(name: str, secret: str) -> None:
    raw = secret.encode()
    if (
        len(raw) < MIN_SECRET_BYTES
        or secret.lower() in _PLACEHOLDERS
        or len(set(raw)) < MIN_SECRET_DISTINCT
    ):
        raise InsecureConfiguration(
            f"{name} must be set to at least {MIN_SECRET_BYTES} bytes of random data "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def _parse_codec_keys(value: object) -> object:
    """``keyid:base64key,...`` (the variable's format) into (key id, key) pairs."""
    if not isinstance(value, str):
        return value
    ring: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_id, _, b64 = item.partition(":")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            key = b""
        if len(key) not in (16, 24, 32) or not key_id:
            # Not a ValueError: pydantic would fold it into a validation error that
            # echoes the input, and the input is a secret.
            raise InsecureConfiguration(
                f"CODEC_KEYS entry {key_id!r} is not keyid:base64(16|24|32 bytes)"
            )
        ring.append((key_id, key))
    return tuple(ring)


CodecKeyring = Annotated[
    tuple[tuple[str, bytes], ...], NoDecode, BeforeValidator(_parse_codec_keys)
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # --- the contract's variables -------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///./var/authflow.db"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "no-reply@authflow.local"
    jwt_secret: str = ""
    admin_email: str | None = None
    admin_password: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    otp_ttl_seconds: int = Field(default=600, ge=10)
    otp_max_attempts: int = Field(default=5, ge=1)
    otp_resend_cooldown_seconds: int = Field(default=60, ge=0)
    require_approval: bool = False
    # Where users reach the product: links in emails (unsubscribe, certificates) start here.
    public_base_url: str = "http://127.0.0.1:8000"
    otp_max_failures_per_day: int = Field(default=10, ge=1)
    client_rate_limit_per_minute: int = Field(default=60, ge=1)
    # Comma-separated addresses whose X-Forwarded-For / X-Forwarded-Proto are believed.
    trusted_proxies: str = ""
    file_storage_url: str = "file://./var/files"
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    inactivity_reminder_days: int = Field(default=7, ge=0)

    # --- additions ---------------------------------------------------------------
    # "dev" relaxes the secret checks (``authflow dev`` generates secrets) and lets
    # localhost use the Temporal codec endpoint without a token.
    environment: Literal["production", "development", "test"] = "production"
    jwt_issuer: str = "authflow"
    jwt_audience: str = "authflow-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    # A session lives at most this long after login ...
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # ... and its refresh token dies after this long unused.
    refresh_token_idle_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    # Comma-separated ``keyid:base64key`` list; the first key encrypts, all decrypt.
    # Unset: one key derived from JWT_SECRET (fine for dev, set it in production).
    codec_keys: CodecKeyring = Field(default=(), repr=False)
    # Keyed hashes of codes and email addresses use this; unset: derived from JWT_SECRET.
    otp_secret: str = ""
    # Per-kind overrides of the declared email rate limits: ``register=20,notification=5``
    # (kind or task-queue names; JSON objects are accepted too).
    email_rate_limits: Annotated[dict[EmailKind, PositiveFloat], NoDecode] = Field(
        default_factory=dict
    )
    # Recipients one run of a broadcast workflow sends before it continues as new (its
    # history stays bounded whatever the audience's size).
    announcement_page_size: int = Field(100, ge=1, le=1000)
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_api_key: str = ""
    temporal_tls_cert: str = ""
    temporal_tls_key: str = ""
    # A worker serves the Temporal SDK's own metrics on this port (0: off); the API's
    # /metrics appends the text of every URL in WORKER_METRICS_URLS (authflow dev sets both).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_urls: str = ""
    # Run workflow code in the Temporal SDK's sandbox in the workers.  Off by default: the
    # sandbox costs a fresh module namespace per workflow run (a third of the worker's
    # CPU in a registration spike, docs/architecture.md), and determinism is checked
    # where it is cheap: every test runs workflows sandboxed.
    workflow_sandbox: bool = False
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Password hashing runs in a thread pool this large (argon2 releases the GIL).
    hash_workers: int = Field(default=0, ge=0)
    # ... whose threads run this much lower in CPU priority (nice +N, Linux; 0: normal),
    # so that a hashing burst leaves the workers sharing the host the CPU they need.
    hash_nice: int = Field(default=10, ge=0, le=19)
    login_max_failures_per_hour: int = Field(default=100, ge=1, le=100)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("email_rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("{"):
                value = json.loads(value)
            else:
                pairs = (item.partition("=") for item in value.split(",") if item.strip())
                value = {name.strip(): rate.strip() for name, _, rate in pairs}
        if isinstance(value, dict):
            return {email_kind_named(str(name)): rate for name, rate in value.items()}
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        """No secret has a built-in default in any mode (``authflow dev`` generates one),
        and a weak one is refused at start with a message that says how to make one."""
        _require_strong("JWT_SECRET", self.jwt_secret)
        if self.otp_secret:
            _require_strong("OTP_SECRET", self.otp_secret)
        return self

    # --- derived values ------------------------------------------------------------
    def derived_key(self, label: str) -> bytes:
        """A 32-byte key for one purpose, derived from JWT_SECRET when not configured."""
        base = self.jwt_secret.encode()
        return hmac.new(base, f"authflow/{label}".encode(), hashlib.sha256).digest()

    @property
    def otp_key(self) -> bytes:
        if self.otp_secret:
            return hashlib.sha256(self.otp_secret.encode()).digest()
        return self.derived_key("otp")

    def codec_keyring(self) -> list[tuple[str, bytes]]:
        """(key id, 32-byte key) pairs, the encrypting key first."""
        return list(self.codec_keys) or [("derived-1", self.derived_key("temporal-codec"))]

    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
