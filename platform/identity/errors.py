"""Identity errors: each a stable RFC 9457 problem type."""

from __future__ import annotations

from lianka.platform.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthorized


class InvalidCredentials(Unauthorized):
    """Wrong e-mail or password, wrong code: one answer, whichever part was wrong."""

    type_slug = "invalid-credentials"
    title = "The credentials are not valid"


class InvalidToken(Unauthorized):
    type_slug = "invalid-token"
    title = "The access token is not valid"


class TokenExpired(InvalidToken):
    type_slug = "token-expired"
    title = "The access token has expired"


class SessionExpired(Unauthorized):
    type_slug = "session-expired"
    title = "The session has ended; sign in again"


class CsrfFailed(Forbidden):
    type_slug = "csrf-failed"
    title = "Missing or wrong CSRF token"


class InsufficientPermission(Forbidden):
    type_slug = "insufficient-permission"
    title = "Your role or scopes do not allow this"


class AccountLocked(RateLimited):
    type_slug = "account-locked"
    title = "Too many failed sign-in attempts; try again later"


class JsonRequired(BadRequest):
    """Cookie-issuing sign-ins take JSON only: a cross-site HTML form cannot send it without a CORS
    pre-flight, so no other site can sign a browser into an account of its choosing (login CSRF)."""

    type_slug = "json-required"
    title = "Send this request as application/json"
    status = 415


class MerchantRequired(BadRequest):
    type_slug = "merchant-required"
    title = "Choose the merchant to act for (X-Merchant header)"


class MerchantNotFound(NotFound):
    """Also the answer for a merchant the caller does not belong to."""

    type_slug = "not-found"
    title = "Merchant not found"


class EmailTaken(Conflict):
    type_slug = "email-taken"
    title = "An account with this e-mail already exists"


class SlugTaken(Conflict):
    type_slug = "slug-taken"
    title = "This merchant slug is taken"


class OidcFailed(Unauthorized):
    type_slug = "oidc-failed"
    title = "Sign-in with the external provider failed"


class OidcNotConfigured(NotFound):
    type_slug = "not-found"
    title = "External sign-in is not configured"
