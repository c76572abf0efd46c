from __future__ import annotations

from pathlib import Path

import pytest

from lianka.platform.settings import Settings, SettingsError


def test_defaults_need_no_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path)})
    assert s.env == "development" and s.port == 8000
    assert len(s.secret_key) > 40
    assert Settings.from_env({"LIANKA_DATA_DIR": str(tmp_path)}).secret_key == s.secret_key


def test_production_requires_a_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"LIANKA_ENV": "production", "LIANKA_DATA_DIR": str(tmp_path)})


def test_app_url_is_derived_from_the_owner_url(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+asyncpg://owner:pw@db.example:5432/lianka",
            "LIANKA_APP_DB_PASSWORD": "s3cret",
            "LIANKA_DATA_DIR": str(tmp_path),
        }
    )
    assert s.resolved_app_database_url() == "postgresql+asyncpg://lianka_app:s3cret@db.example:5432/lianka"


def test_bad_boolean(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"LIANKA_LOG_JSON": "maybe", "LIANKA_DATA_DIR": str(tmp_path)})


def test_job_recovery_timings(tmp_path: Path) -> None:
    base = {"LIANKA_DATA_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    assert (s.job_heartbeat_timeout_ms, s.job_requeue_interval_s) == (20_000, 5.0)
    s = Settings.from_env(base | {"LIANKA_JOB_HEARTBEAT_TIMEOUT_MS": "6000", "LIANKA_JOB_REQUEUE_INTERVAL_S": "1.5"})
    assert (s.job_heartbeat_timeout_ms, s.job_requeue_interval_s) == (6_000, 1.5)
    for interval in ("3.1", "0", "-1"):  # a live worker must beat at least twice within the timeout
        with pytest.raises(SettingsError, match="REQUEUE_INTERVAL"):
            Settings.from_env(
                base | {"LIANKA_JOB_HEARTBEAT_TIMEOUT_MS": "6000", "LIANKA_JOB_REQUEUE_INTERVAL_S": interval}
            )


def test_webhook_retention_days_default_and_bounds(tmp_path: Path) -> None:
    base = {"LIANKA_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).webhook_retention_days == 30
    assert Settings.from_env(base | {"LIANKA_WEBHOOK_RETENTION_DAYS": "7"}).webhook_retention_days == 7
    for bad in ("0", "-3", "3651"):
        with pytest.raises(SettingsError, match="WEBHOOK_RETENTION_DAYS"):
            Settings.from_env(base | {"LIANKA_WEBHOOK_RETENTION_DAYS": bad})
