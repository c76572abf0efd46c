"""Typed settings, read once from the environment.

Defaults suit development: no variable is needed for ``make run``. In production set at least
``LIANKA_ENV=production``, ``DATABASE_URL``, ``APP_DATABASE_URL`` (or ``LIANKA_APP_DB_PASSWORD``),
``REDIS_URL`` and ``LIANKA_SECRET_KEY``.
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import make_url

from lianka.platform.identity.config import IdentitySettings

APP_ROLE = "lianka_app"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or malformed."""


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    #: owner role: runs migrations; the app itself never connects with it.
    database_url: str = ""
    #: the application role that row-level security applies to. Derived from ``database_url``
    #: (same host and database, user ``lianka_app``) when not given.
    app_database_url: str = ""
    app_db_password: str = ""
    redis_url: str = ""
    data_dir: Path = PROJECT_ROOT / ".lianka"
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    db_pool_size: int = 10
    db_max_overflow: int = 20
    default_timezone: str = "Asia/Shanghai"
    default_currency: str = "CNY"
    relay_batch_size: int = 100
    relay_poll_seconds: float = 0.5
    #: sign-in, tokens, OIDC, mail and SMS (``LIANKA_PUBLIC_URL``, ``LIANKA_OIDC_*``, ``LIANKA_SMTP_*`` …)
    identity: IdentitySettings = field(default_factory=IdentitySettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        s = cls(
            env=env.get("LIANKA_ENV", cls.env),
            database_url=env.get("DATABASE_URL", ""),
            app_database_url=env.get("APP_DATABASE_URL", ""),
            app_db_password=env.get("LIANKA_APP_DB_PASSWORD", ""),
            redis_url=env.get("REDIS_URL", ""),
            data_dir=Path(env.get("LIANKA_DATA_DIR", str(cls.data_dir))),
            secret_key=env.get("LIANKA_SECRET_KEY", ""),
            host=env.get("LIANKA_HOST", cls.host),
            port=int(env.get("LIANKA_PORT", str(cls.port))),
            log_level=env.get("LIANKA_LOG_LEVEL", cls.log_level).upper(),
            log_json=_bool(env.get("LIANKA_LOG_JSON", "0")),
            db_pool_size=int(env.get("LIANKA_DB_POOL_SIZE", str(cls.db_pool_size))),
            db_max_overflow=int(env.get("LIANKA_DB_MAX_OVERFLOW", str(cls.db_max_overflow))),
            relay_batch_size=int(env.get("LIANKA_RELAY_BATCH_SIZE", str(cls.relay_batch_size))),
        )
        s = replace(s, identity=IdentitySettings.from_env(env, production=s.is_production, host=s.host,
                                                         port=s.port))
        if s.is_production and not s.secret_key:
            raise SettingsError("LIANKA_SECRET_KEY must be set in production")
        if not s.secret_key:
            s = replace(s, secret_key=_dev_secret(s.data_dir))
        return s

    def with_services(self, database_url: str, redis_url: str) -> Settings:
        """The same settings pointing at concrete services (embedded or external)."""
        return replace(self, database_url=database_url, redis_url=redis_url)

    def resolved_app_database_url(self) -> str:
        if self.app_database_url:
            return self.app_database_url
        if not self.database_url:
            raise SettingsError("DATABASE_URL is not set and no embedded PostgreSQL was started")
        url = make_url(self.database_url).set(username=APP_ROLE, password=self.app_db_password or None)
        return url.render_as_string(hide_password=False)


def _dev_secret(data_dir: Path) -> str:
    """A per-checkout random secret kept in the data directory (development only)."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
