"""Identity settings, read once with the rest of :class:`lianka.platform.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdentitySettings:
    #: ``iss`` of the tokens this server signs; also the base of links in e-mails.
    public_url: str = "http://127.0.0.1:8000"
    #: staff bearer tokens (``POST /api/v1/auth/token``) and POS/integration tokens (``/oauth/token``)
    staff_token_ttl: int = 15 * 60
    client_token_ttl: int = 60 * 60
    #: console and portal sessions (absolute lifetime)
    staff_session_ttl: int = 12 * 3600
    member_session_ttl: int = 30 * 24 * 3600
    #: a signing key stops signing at rotation and is still served/accepted for this long after
    key_grace_seconds: int = 2 * 3600
    #: password sign-in: attempts per (e-mail, client address) before that address is locked out of
    #: that account, and the lockout window. Counted before the password is verified; a success
    #: takes its own attempt back.
    max_failed_logins: int = 5
    lockout_seconds: int = 15 * 60
    #: the ceiling per e-mail over all addresses together (higher: one address cannot lock anyone out)
    max_failed_logins_global: int = 20
    #: sign-in attempts per client address per lockout window (all e-mails together)
    max_logins_per_ip: int = 50
    #: member one-time codes
    otp_ttl: int = 5 * 60
    #: guesses at one code per client address, and over all addresses (then the code is burnt)
    otp_max_attempts: int = 5
    otp_max_attempts_global: int = 10
    otp_resend_seconds: int = 60
    otp_per_hour: int = 5
    #: external OpenID Connect provider for staff sign-in (disabled when the issuer is empty)
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    #: e-mail: "console" logs messages; "smtp" sends through ``smtp_host``
    mail_backend: str = "console"
    mail_from: str = "Lianka <no-reply@lianka.local>"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    #: SMS: "console" logs messages (development); a real gateway plugs in behind ``sms.SmsChannel``
    sms_backend: str = "console"
    #: mark cookies ``Secure`` (on by default in production)
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str], *, production: bool, host: str, port: int) -> IdentitySettings:
        def b(name: str, default: bool) -> bool:
            v = env.get(name)
            return default if v is None else v.lower() in {"1", "true", "yes", "on"}

        mail_backend = env.get("LIANKA_MAIL_BACKEND", "smtp" if env.get("LIANKA_SMTP_HOST") else "console")
        return cls(
            public_url=env.get("LIANKA_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            staff_token_ttl=int(env.get("LIANKA_STAFF_TOKEN_TTL", str(cls.staff_token_ttl))),
            client_token_ttl=int(env.get("LIANKA_CLIENT_TOKEN_TTL", str(cls.client_token_ttl))),
            oidc_issuer=env.get("LIANKA_OIDC_ISSUER", "").rstrip("/"),
            oidc_client_id=env.get("LIANKA_OIDC_CLIENT_ID", ""),
            oidc_client_secret=env.get("LIANKA_OIDC_CLIENT_SECRET", ""),
            mail_backend=mail_backend,
            mail_from=env.get("LIANKA_MAIL_FROM", cls.mail_from),
            smtp_host=env.get("LIANKA_SMTP_HOST", ""),
            smtp_port=int(env.get("LIANKA_SMTP_PORT", str(cls.smtp_port))),
            smtp_user=env.get("LIANKA_SMTP_USER", ""),
            smtp_password=env.get("LIANKA_SMTP_PASSWORD", ""),
            smtp_starttls=b("LIANKA_SMTP_STARTTLS", True),
            sms_backend=env.get("LIANKA_SMS_BACKEND", "console"),
            secure_cookies=b("LIANKA_SECURE_COOKIES", production),
        )
