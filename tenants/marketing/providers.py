"""A merchant's delivery providers: which SMS provider (console, Aliyun, Tencent), which e-mail
transport (console, SMTP) and its WeChat app for subscribe messages, their public settings, and their credential sealed at rest
(``platform.secrets``). :func:`channel_for` builds the :class:`Channel` a send uses.

Only the secret part (Aliyun AccessKeySecret, Tencent SecretKey, SMTP password, WeChat AppSecret) is sealed; what
identifies an account (AccessKeyId, SecretId, SDK app id, sign name, template) is shown to staff.
The secret is never shown again: the console shows its last four characters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from lianka.platform.db import Database, UnitOfWork
from lianka.platform.secrets import open_sealed, seal
from lianka.tenants.marketing.channels import Channel, aliyun, tencent, wechat
from lianka.tenants.marketing.channels.aliyun import AliyunSettings, AliyunSms
from lianka.tenants.marketing.channels.console import ConsoleChannel
from lianka.tenants.marketing.channels.smtp import SmtpChannel, SmtpSettings
from lianka.tenants.marketing.channels.tencent import TencentSettings, TencentSms
from lianka.tenants.marketing.channels.wechat import WechatSettings, WechatSubscribe
from lianka.tenants.marketing.errors import BadProviderSettings
from lianka.tenants.marketing.models import MessagingProvider

CHANNELS = ("sms", "email", "wechat")
PROVIDERS: dict[str, tuple[str, ...]] = {
    "sms": ("console", "aliyun", "tencent"),
    "email": ("console", "smtp"),
    "wechat": ("console", "wechat"),
}
#: each provider's public settings: (name, required)
FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "console": (),
    "aliyun": (
        ("access_key_id", True),
        ("sign_name", True),
        ("template_code", True),
        ("endpoint", False),
        ("region", False),
    ),
    "tencent": (
        ("secret_id", True),
        ("sdk_app_id", True),
        ("sign_name", True),
        ("template_id", True),
        ("endpoint", False),
        ("region", False),
    ),
    "wechat": (("appid", True), ("template_id", True), ("page", False), ("field", False), ("endpoint", False)),
    "smtp": (("host", True), ("port", True), ("sender", True), ("username", False), ("security", False)),
}
#: what the sealed secret is called, per provider
SECRET_NAME = {"aliyun": "access_key_secret", "tencent": "secret_key", "smtp": "password", "wechat": "app_secret"}


@dataclass(frozen=True)
class ProviderView:
    channel: str
    provider: str
    settings: dict[str, str]
    #: "" when none is stored, else the last four characters behind bullets
    secret_hint: str
    updated_at: datetime | None


def _check(channel: str, provider: str, settings: dict[str, Any]) -> dict[str, str]:
    if channel not in CHANNELS:
        raise BadProviderSettings(f"channel is one of {', '.join(CHANNELS)}", field="channel")
    if provider not in PROVIDERS[channel]:
        raise BadProviderSettings(f"{channel} provider is one of {', '.join(PROVIDERS[channel])}", field="provider")
    known = {name for name, _ in FIELDS[provider]}
    unknown = set(settings) - known
    if unknown:
        raise BadProviderSettings(f"unknown setting {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    out: dict[str, str] = {}
    for name, required in FIELDS[provider]:
        value = settings.get(name, "")
        if not isinstance(value, str) or len(value) > 200:
            raise BadProviderSettings(f"{name}: text of at most 200 characters", field=name)
        value = value.strip()
        if required and not value:
            raise BadProviderSettings(f"{name} is required", field=name)
        if value:
            out[name] = value
    if "endpoint" in out and not out["endpoint"].startswith(("https://", "http://")):
        raise BadProviderSettings("endpoint: an http(s) URL", field="endpoint")
    if provider == "wechat" and wechat.field_type(out.get("field", "thing1")) not in wechat.LIMITS:
        raise BadProviderSettings("field: a template field such as thing1", field="field")
    if provider == "smtp":
        if not out["port"].isdigit() or not 0 < int(out["port"]) < 65536:
            raise BadProviderSettings("port: 1-65535", field="port")
        if out.get("security", "starttls") not in ("starttls", "tls", "none"):
            raise BadProviderSettings("security: starttls, tls or none", field="security")
        if "@" not in out["sender"]:
            raise BadProviderSettings("sender: an e-mail address", field="sender")
    return out


def _hint(secret: str) -> str:
    return "••••" + secret[-4:] if len(secret) >= 8 else "••••"


def view(row: MessagingProvider | None, channel: str) -> ProviderView:
    if row is None:
        return ProviderView(channel, "console", {}, "", None)
    return ProviderView(row.channel, row.provider, {k: str(v) for k, v in row.settings.items()}, row.secret_hint,
                        row.updated_at)  # fmt: skip


async def _row(uow: UnitOfWork, channel: str, *, lock: bool = False) -> MessagingProvider | None:
    return await uow.session.get(MessagingProvider, (uow.tenant_id, channel), with_for_update=lock)


async def providers(db: Database, tenant: uuid.UUID) -> list[ProviderView]:
    async with db.uow(tenant) as uow:
        rows = {r.channel: r for r in await uow.session.scalars(select(MessagingProvider))}
    return [view(rows.get(c), c) for c in CHANNELS]


async def save_provider(
    db: Database, tenant: uuid.UUID, channel: str, provider: str, settings: dict[str, Any], secret: str | None
) -> ProviderView:
    """Choose the channel's provider. ``secret`` None or "" keeps the stored one (same provider only:
    a new provider needs its own)."""
    clean = _check(channel, provider, settings)
    if secret is not None and len(secret) > 500:
        raise BadProviderSettings("the secret is too long", field="secret")
    async with db.uow(tenant) as uow:
        row = await _row(uow, channel, lock=True)
        if row is None:
            row = MessagingProvider(tenant_id=tenant, channel=channel, provider=provider, secret_sealed="")
            uow.session.add(row)
        keep = bool(row.secret_sealed) and row.provider == provider and not secret
        needs = provider in SECRET_NAME and provider != "smtp"
        if needs and not secret and not keep:
            raise BadProviderSettings(f"{SECRET_NAME[provider]} is required", field="secret")
        if not keep:
            row.secret_sealed, row.secret_hint = (seal(secret), _hint(secret)) if secret else ("", "")
        row.provider, row.settings, row.updated_at = provider, dict(clean), datetime.now(UTC)
        await uow.session.flush()
        out = view(row, channel)
        await uow.commit()
        return out


def build_channel(provider: str, settings: dict[str, Any], secret: str) -> Channel:
    s = {k: str(v) for k, v in settings.items()}
    match provider:
        case "aliyun":
            return AliyunSms(
                AliyunSettings(
                    access_key_id=s["access_key_id"],
                    access_key_secret=secret,
                    sign_name=s["sign_name"],
                    template_code=s["template_code"],
                    endpoint=s.get("endpoint", aliyun.DEFAULT_ENDPOINT),
                    region=s.get("region", "cn-hangzhou"),
                )
            )
        case "tencent":
            return TencentSms(
                TencentSettings(
                    secret_id=s["secret_id"],
                    secret_key=secret,
                    sdk_app_id=s["sdk_app_id"],
                    sign_name=s["sign_name"],
                    template_id=s["template_id"],
                    endpoint=s.get("endpoint", tencent.DEFAULT_ENDPOINT),
                    region=s.get("region", "ap-guangzhou"),
                )
            )
        case "wechat":
            return WechatSubscribe(
                WechatSettings(
                    appid=s["appid"],
                    secret=secret,
                    template_id=s["template_id"],
                    page=s.get("page", ""),
                    field=s.get("field", "thing1"),
                    base_url=s.get("endpoint", wechat.DEFAULT_BASE),
                )
            )
        case "smtp":
            return SmtpChannel(
                SmtpSettings(
                    host=s["host"],
                    port=int(s["port"]),
                    sender=s["sender"],
                    username=s.get("username", ""),
                    password=secret,
                    security=s.get("security", "starttls"),
                )
            )
        case _:
            return ConsoleChannel()


async def channel_for(uow: UnitOfWork, channel: str) -> Channel:
    """The merchant's channel (the logging console backend until a provider is chosen)."""
    row = await _row(uow, channel)
    if row is None:
        return ConsoleChannel()
    return build_channel(row.provider, row.settings, open_sealed(row.secret_sealed) if row.secret_sealed else "")
