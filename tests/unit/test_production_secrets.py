"""Production refuses missing, short, predictable or placeholder secrets; development does not care."""

from __future__ import annotations

import ipaddress
import re
import secrets
from pathlib import Path

import pytest
import yaml

from lianka.platform.settings import Settings, SettingsError, estimated_bits, ip_networks

STRONG = {
    "LIANKA_SECRET_KEY": secrets.token_urlsafe(48),
    "LIANKA_METRICS_TOKEN": secrets.token_urlsafe(32),
    "LIANKA_APP_DB_PASSWORD": secrets.token_urlsafe(24),
}


def production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {"LIANKA_ENV": "production", "LIANKA_DATA_DIR": str(tmp_path), **STRONG, **overrides}
    return {k: v for k, v in env.items() if v is not None}


def test_strong_secrets_start(tmp_path: Path) -> None:
    s = Settings.from_env(
        production(
            tmp_path,
            DATABASE_URL=f"postgresql+asyncpg://owner:{secrets.token_urlsafe(24)}@db:5432/lianka",
            LIANKA_SMTP_USER="mailer",
            LIANKA_SMTP_PASSWORD=secrets.token_urlsafe(16),
            LIANKA_OIDC_ISSUER="https://id.example.net",
            LIANKA_OIDC_CLIENT_SECRET=secrets.token_urlsafe(32),
        )
    )
    assert s.is_production and s.metrics_token == STRONG["LIANKA_METRICS_TOKEN"]


WEAK = [
    ("", "is not set"),
    ("change-me-to-a-long-random-string", "placeholder"),  # infra/compose.yaml, before
    ("app-change-me", "placeholder"),
    (
        "CHANGEME" + "GXDB8NwEfu4MJuCFmS6VTo3-6Pr0up5QZVmSPCvOuVcuVkxBGsSbJw",
        "placeholder",
    ),  # fixed: test ids must not vary
    ("my-secret-key-for-production-use-0001", "placeholder"),
    ("Kx9#pQ2", "shorter"),
    ("a" * 64, "predictable"),
    ("abcd" * 16, "predictable"),
    ("0123456789" * 6, "predictable"),
]


@pytest.mark.parametrize("variable", ["LIANKA_SECRET_KEY", "LIANKA_METRICS_TOKEN", "LIANKA_APP_DB_PASSWORD"])
@pytest.mark.parametrize(("value", "reason"), WEAK)
def test_weak_required_secrets_are_refused(tmp_path: Path, variable: str, value: str, reason: str) -> None:
    env = production(tmp_path)
    if value:
        env[variable] = value
    else:
        env.pop(variable)
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    message = str(err.value)
    assert variable in message and reason in message
    if value:
        assert value not in message  # the error reaches the logs: it never repeats the secret


@pytest.mark.parametrize(
    ("variable", "extra"),
    [
        ("LIANKA_SMTP_PASSWORD", {"LIANKA_SMTP_HOST": "smtp.example.net", "LIANKA_SMTP_USER": "mailer"}),
        ("LIANKA_OIDC_CLIENT_SECRET", {"LIANKA_OIDC_ISSUER": "https://id.example.net", "LIANKA_OIDC_CLIENT_ID": "lk"}),
    ],
)
def test_optional_secrets_are_checked_when_set(tmp_path: Path, variable: str, extra: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(production(tmp_path, **extra, **{variable: "changeme"}))
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(production(tmp_path, **extra, **{variable: "xyzxyzxyzxyzxyzxyz"}))
    Settings.from_env(production(tmp_path, **extra))  # not set: nothing to check (OIDC/SMTP may not need one)
    Settings.from_env(production(tmp_path, **extra, **{variable: secrets.token_urlsafe(18)}))


def test_database_passwords_in_urls_are_checked(tmp_path: Path) -> None:
    weak_owner = "postgresql+asyncpg://lianka_owner:owner-change-me@postgres:5432/lianka"
    with pytest.raises(SettingsError, match=r"DATABASE_URL \(password\)"):
        Settings.from_env(production(tmp_path, DATABASE_URL=weak_owner))
    weak_app = "postgresql+asyncpg://lianka_app:lianka@db:5432/lianka"
    with pytest.raises(SettingsError, match=r"APP_DATABASE_URL \(password\)"):
        Settings.from_env(production(tmp_path, APP_DATABASE_URL=weak_app))
    # a password-less URL (certificate or peer authentication) has nothing to check
    Settings.from_env(production(tmp_path, APP_DATABASE_URL="postgresql+asyncpg://lianka_app@db:5432/lianka"))


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    env = {"LIANKA_ENV": "production", "LIANKA_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    for variable in ("LIANKA_SECRET_KEY", "LIANKA_METRICS_TOKEN", "LIANKA_APP_DB_PASSWORD"):
        assert variable in str(err.value)


def test_development_accepts_anything(tmp_path: Path) -> None:
    s = Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path), "LIANKA_SECRET_KEY": "dev", "LIANKA_METRICS_TOKEN": ""})
    assert s.secret_key == "dev" and s.metrics_token == ""


def test_estimated_bits_tracks_real_entropy() -> None:
    assert estimated_bits(secrets.token_urlsafe(32)) >= 190
    assert estimated_bits(secrets.token_hex(16)) >= 128
    assert estimated_bits("a" * 100) < 64
    assert estimated_bits("") == 0


def test_compose_holds_no_secret_and_its_old_placeholders_would_not_start(project_root: Path, tmp_path: Path) -> None:
    """``infra/compose.yaml`` takes every secret from the environment (``${VAR:?…}``: compose stops
    when it is missing); and the values it used to ship are refused by production start-up."""
    text = (project_root / "infra" / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    secret_like = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret_like.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}.{key} is a literal: {value!r}"
            if key.endswith("_URL") and "@" in str(value):
                password = str(value).split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", password), f"{name}.{key} embeds a password"
    for old in ("owner-change-me", "app-change-me", "change-me-to-a-long-random-string"):
        assert old not in text
    with pytest.raises(SettingsError):
        Settings.from_env(
            {
                "LIANKA_ENV": "production",
                "LIANKA_DATA_DIR": str(tmp_path),
                "DATABASE_URL": "postgresql+asyncpg://lianka_owner:owner-change-me@postgres:5432/lianka",
                "LIANKA_APP_DB_PASSWORD": "app-change-me",
                "LIANKA_SECRET_KEY": "change-me-to-a-long-random-string",
                "LIANKA_METRICS_TOKEN": secrets.token_urlsafe(32),
            }
        )


def test_trusted_proxies_parse(tmp_path: Path) -> None:
    s = Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path), "LIANKA_TRUSTED_PROXIES": "192.0.2.10, 2001:db8::/32,"})
    assert s.trusted_proxies == ("192.0.2.10/32", "2001:db8::/32")
    assert ip_networks(s.trusted_proxies)[1] == ipaddress.ip_network("2001:db8::/32")
    assert Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path)}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="LIANKA_TRUSTED_PROXIES"):
        Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path), "LIANKA_TRUSTED_PROXIES": "proxy.internal"})
