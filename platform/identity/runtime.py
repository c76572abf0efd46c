"""The per-application bundle the identity services need (built once in the app's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from lianka.platform.db import Database
from lianka.platform.identity.config import IdentitySettings
from lianka.platform.identity.ratelimit import Limiter
from lianka.platform.identity.sms import SmsChannel, sms_channel_for
from lianka.platform.identity.tokens import KeyRing
from lianka.platform.settings import Settings


@dataclass
class Identity:
    db: Database
    settings: Settings
    redis: Redis
    keyring: KeyRing
    sms: SmsChannel
    limiter: Limiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = Limiter(self.redis)

    @property
    def cfg(self) -> IdentitySettings:
        return self.settings.identity

    @property
    def secret(self) -> str:
        return self.settings.secret_key

    @classmethod
    def create(cls, db: Database, settings: Settings, redis: Redis, sms: SmsChannel | None = None) -> Identity:
        return cls(
            db=db,
            settings=settings,
            redis=redis,
            keyring=KeyRing(db, settings.secret_key, settings.identity),
            sms=sms or sms_channel_for(settings.identity),
        )
