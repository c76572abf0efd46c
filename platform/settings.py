"""Typed settings, read once from the environment.

Defaults suit development: no variable is needed for ``make run``. In production set at least
``LIANKA_ENV=production``, ``DATABASE_URL``, ``APP_DATABASE_URL`` (or ``LIANKA_APP_DB_PASSWORD``),
``REDIS_URL``, ``LIANKA_SECRET_KEY`` and ``LIANKA_METRICS_TOKEN``. Production refuses to start with a
missing, short, low-entropy or placeholder secret (:func:`check_production_secrets`).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import secrets
import zlib
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


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: str) -> tuple[str, ...]:
    """``LIANKA_TRUSTED_PROXIES``: comma-separated addresses or CIDR blocks, checked and normalised
    (kept as strings: the settings stay plain data; :func:`ip_networks` parses them once)."""
    try:
        return tuple(str(ipaddress.ip_network(p.strip(), strict=False)) for p in value.split(",") if p.strip())
    except ValueError as exc:
        raise SettingsError(f"LIANKA_TRUSTED_PROXIES: {exc}") from None


@functools.cache
def ip_networks(cidrs: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


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
    #: a worker whose heartbeat is older than this is dead: its unacknowledged jobs go back to the
    #: queue (``LIANKA_JOB_HEARTBEAT_TIMEOUT_MS``; ``platform/jobs.py``)
    job_heartbeat_timeout_ms: int = 20_000
    #: how often each worker process beats and sweeps its queues for dead workers' jobs
    #: (``LIANKA_JOB_REQUEUE_INTERVAL_S``); must be well under the heartbeat timeout
    job_requeue_interval_s: float = 5.0
    #: webhook deliveries finished longer ago than this are deleted by the nightly ``webhooks-prune``
    #: (``LIANKA_WEBHOOK_RETENTION_DAYS``, 1 to 3650)
    webhook_retention_days: int = 30
    #: reverse proxies whose ``X-Forwarded-For`` is believed (empty: nobody's; see ``web/api/cookies.py``)
    trusted_proxies: tuple[str, ...] = ()
    #: bearer token for ``GET /metrics``; required in production, the endpoint is open without one
    metrics_token: str = ""
    #: sign-in, tokens, OIDC, mail and SMS (``LIANKA_PUBLIC_URL``, ``LIANKA_OIDC_*``, ``LIANKA_SMTP_*`` …)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    #: Stripe (billing): where the SDK sends its requests (the local stand-in in development and tests,
    #: Stripe itself when empty), the secret API key, and the webhook endpoint's signing secret
    stripe_api_base: str = ""
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    #: the key that seals stored credentials (``platform/secrets.py``: merchants' payment-provider and
    #: SMS/e-mail credentials); derived from ``secret_key`` in development, required in production
    secrets_key: str = ""
    #: where the WeChat Pay SDK sends its requests (the local stand-in in development and tests,
    #: WeChat Pay itself when empty)
    wechatpay_api_base: str = ""
    #: OpenTelemetry traces go to this OTLP (http/protobuf) endpoint; empty: tracing is off
    #: (``LIANKA_OTLP_ENDPOINT``, else the SDK's own ``OTEL_EXPORTER_OTLP_ENDPOINT``; decision 0049)
    otlp_endpoint: str = ""
    #: the worker's Prometheus endpoint (``lianka worker``); 0: none (decision 0049)
    worker_metrics_port: int = 0

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
            job_heartbeat_timeout_ms=int(env.get("LIANKA_JOB_HEARTBEAT_TIMEOUT_MS", str(cls.job_heartbeat_timeout_ms))),
            job_requeue_interval_s=float(env.get("LIANKA_JOB_REQUEUE_INTERVAL_S", str(cls.job_requeue_interval_s))),
            webhook_retention_days=int(env.get("LIANKA_WEBHOOK_RETENTION_DAYS", str(cls.webhook_retention_days))),
            trusted_proxies=_networks(env.get("LIANKA_TRUSTED_PROXIES", "")),
            metrics_token=env.get("LIANKA_METRICS_TOKEN", ""),
            stripe_api_base=env.get("LIANKA_STRIPE_API_BASE", ""),
            stripe_secret_key=env.get("LIANKA_STRIPE_SECRET_KEY", ""),
            stripe_webhook_secret=env.get("LIANKA_STRIPE_WEBHOOK_SECRET", ""),
            secrets_key=env.get("LIANKA_SECRETS_KEY", ""),
            wechatpay_api_base=env.get("LIANKA_WECHATPAY_API_BASE", ""),
            otlp_endpoint=env.get("LIANKA_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            worker_metrics_port=int(env.get("LIANKA_WORKER_METRICS_PORT", "0")),
        )
        s = replace(s, identity=IdentitySettings.from_env(env, production=s.is_production, host=s.host, port=s.port))
        if not 0 < s.job_requeue_interval_s * 2_000 <= s.job_heartbeat_timeout_ms:
            raise SettingsError(
                "LIANKA_JOB_REQUEUE_INTERVAL_S must be positive and at most half of LIANKA_JOB_HEARTBEAT_TIMEOUT_MS"
                " (a live worker must beat at least twice before it looks dead)"
            )
        if not 1 <= s.webhook_retention_days <= 3650:
            raise SettingsError("LIANKA_WEBHOOK_RETENTION_DAYS must be 1 to 3650 (days)")
        if s.is_production:
            check_production_secrets(s)
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


# --- secrets in production -----------------------------------------------------------------------

#: words that mark a value copied from an example or left as a placeholder
PLACEHOLDER_MARKERS = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "placeholder",
    "example",
    "dummy",
    "password",
    "secret",
    "default",
    "insecure",
)
#: (minimum length, minimum estimated bits): secrets we generate ourselves (``secrets.token_urlsafe``)
GENERATED = (32, 128)
#: passwords we choose (the database roles)
CHOSEN = (16, 64)
#: secrets someone else issues (SMTP, the OIDC provider): we cannot ask for more than they hand out
ISSUED = (12, 48)


def estimated_bits(value: str) -> float:
    """A cheap upper bound of a secret's entropy: log2 of its alphabet (the character classes it
    uses) per character, over the characters ``zlib`` cannot compress away (repetition, patterns).
    A random token scores about its real entropy; ``aaaa…`` or ``abcdabcd…`` score little. It is
    not a password-strength meter (keyboard walks pass): it catches placeholders and lazy values."""
    if not value:
        return 0.0
    pool = sum(
        size for test, size in ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10)) if any(test(c) for c in value)
    )
    pool += 33 if any(not c.isalnum() for c in value) else 0
    incompressible = len(zlib.compress(value.encode(), 9)) - len(zlib.compress(b"", 9))
    return min(len(value), max(0, incompressible)) * math.log2(max(pool, 2))


def secret_problem(value: str, rule: tuple[int, int]) -> str | None:
    """Why ``value`` is not good enough as a production secret under ``rule``, or None. The value
    itself never appears in the answer (it ends up in logs)."""
    min_length, min_bits = rule
    if not value:
        return "is not set"
    lowered = value.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "looks like a placeholder"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    if estimated_bits(value) < min_bits:
        return f"is too predictable (less than ~{min_bits} bits of entropy)"
    return None


def check_production_secrets(s: Settings) -> None:
    """Refuse to run in production with a missing, short, low-entropy or placeholder secret; one
    error lists every offending variable. Generate values with
    ``python -c 'import secrets; print(secrets.token_urlsafe(48))'``."""
    checks: list[tuple[str, str, tuple[int, int]]] = [
        ("LIANKA_SECRET_KEY", s.secret_key, GENERATED),
        ("LIANKA_METRICS_TOKEN", s.metrics_token, GENERATED),
    ]
    app_url_password = make_url(s.app_database_url).password if s.app_database_url else None
    if s.app_database_url:
        if app_url_password is not None:
            checks.append(("APP_DATABASE_URL (password)", str(app_url_password), CHOSEN))
    else:
        checks.append(("LIANKA_APP_DB_PASSWORD", s.app_db_password, CHOSEN))
    if s.database_url and (owner_password := make_url(s.database_url).password) is not None:
        checks.append(("DATABASE_URL (password)", str(owner_password), CHOSEN))
    cfg = s.identity
    if cfg.smtp_password:
        checks.append(("LIANKA_SMTP_PASSWORD", cfg.smtp_password, ISSUED))
    if cfg.oidc_client_secret:
        checks.append(("LIANKA_OIDC_CLIENT_SECRET", cfg.oidc_client_secret, ISSUED))
    problems = [f"{name} {why}" for name, value, rule in checks if (why := secret_problem(value, rule))]
    if problems:
        raise SettingsError(
            "Refusing to start in production: "
            + "; ".join(problems)
            + ". Generate secrets with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


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
