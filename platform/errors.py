"""Domain errors with a stable RFC 9457 identity.

Every error a user can cause is a :class:`DomainError` subclass carrying a ``type`` URI, a
``title`` and an HTTP status; ``web.problems`` maps them once to ``application/problem+json``.
Cross-tenant access is reported exactly like a missing id (404) so that ids leak nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://lianka.dev/problems/"


class DomainError(Exception):
    type_slug: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "The request could not be processed"
    status: ClassVar[int] = 422

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type_slug


class BadRequest(DomainError):
    type_slug = "bad-request"
    title = "Bad request"
    status = 400


class ValidationFailed(DomainError):
    type_slug = "validation-failed"
    title = "The request body or parameters are invalid"
    status = 400


class Unauthorized(DomainError):
    type_slug = "unauthorized"
    title = "Authentication required"
    status = 401


class Forbidden(DomainError):
    type_slug = "forbidden"
    title = "Not allowed"
    status = 403


class NotFound(DomainError):
    """Also what another tenant's id answers: "not yours" and "does not exist" look the same."""

    type_slug = "not-found"
    title = "Not found"
    status = 404


class Conflict(DomainError):
    type_slug = "conflict"
    title = "Conflict with the current state"
    status = 409


class IdempotencyConflict(Conflict):
    type_slug = "idempotency-key-reused"
    title = "This Idempotency-Key was already used for a different request"


class RuleViolation(DomainError):
    type_slug = "rule-violation"
    title = "A business rule forbids this"
    status = 422


class RateLimited(DomainError):
    type_slug = "rate-limited"
    title = "Too many requests"
    status = 429
