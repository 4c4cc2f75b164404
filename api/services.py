"""The API's dependencies, built once per process and injected into routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client

from api.courses.starter import LearningFlows
from api.flows import FlowStarter
from api.outbox import Outbox
from api.unit_of_work import WorkflowGate
from authflow.courses.storage import Storage, storage_from_url
from authflow.db import Database
from authflow.policies import OtpRules, resolve_email_policies
from authflow.security.otp import CodeVault
from authflow.security.passwords import PasswordHasher
from authflow.security.tokens import TokenService
from authflow.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    tokens: TokenService
    vault: CodeVault
    otp_rules: OtpRules
    temporal: Client
    flows: FlowStarter = field(init=False)
    outbox: Outbox = field(init=False)
    gate: WorkflowGate = field(init=False)
    storage: Storage = field(init=False)

    def __post_init__(self) -> None:
        self.storage = storage_from_url(self.settings.file_storage_url)
        self.flows = FlowStarter(
            self.temporal, resolve_email_policies(self.settings.email_rate_limits), self.otp_rules
        )
        learning = LearningFlows(
            self.temporal,
            self.db,
            self.flows,
            reminder_days=self.settings.inactivity_reminder_days,
            base_url=self.settings.public_base_url,
        )
        self.outbox = Outbox(self.db, self.flows, learning)
        self.gate = WorkflowGate(self.temporal)

    @classmethod
    def build(cls, settings: Settings, temporal: Client, db: Database | None = None) -> Services:
        return cls(
            settings=settings,
            # SQLite inline on the loop, as the workers do (``authflow.db.Database``).
            db=db or Database(settings.database_url, inline_sqlite=True),
            hasher=PasswordHasher(workers=settings.hash_workers, nice=settings.hash_nice),
            tokens=TokenService(
                settings.jwt_secret,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            vault=CodeVault(settings.otp_key),
            otp_rules=OtpRules.from_settings(settings),
            temporal=temporal,
        )

    async def close(self) -> None:
        await self.outbox.drain()
        self.hasher.shutdown()
        await self.db.dispose()
