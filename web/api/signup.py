"""Merchant sign-up and e-mail verification (public)."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody

from lianka.platform.identity.guards import IdentityService, public
from lianka.platform.identity.services import SignUp, sign_up, verify_email


class SignupBody(msgspec.Struct, forbid_unknown_fields=True):
    merchant_name: str
    slug: str
    email: str
    password: str
    trade: str = "retail"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"
    display_name: str = ""


class SignupResult(msgspec.Struct):
    merchant_id: uuid.UUID
    user_id: uuid.UUID
    slug: str
    email: str
    email_verification: str = "sent"


class VerifyBody(msgspec.Struct, forbid_unknown_fields=True):
    token: str


class SignupController(Controller):
    path = "/signup"
    tags = ("identity",)
    guards = (public,)

    @post("/", summary="Create a merchant and its owner account")
    async def signup(self, data: JSONBody[SignupBody], ident: IdentityService) -> SignupResult:
        """One transaction: the merchant, the owner's account and membership, and the verification
        e-mail in the outbox. A taken e-mail or slug is a 409 problem."""
        done = await sign_up(ident, SignUp(**msgspec.structs.asdict(data)))
        return SignupResult(done.merchant_id, done.user_id, done.slug, done.email)

    @post(
        "/verify-email",
        status_code=200,
        summary="Confirm an e-mail address with the mailed token",
        opt={"problems": (400, 401, 409, 422, 429, 500)},  # 401: a used, expired or altered token
    )
    async def verify(self, data: JSONBody[VerifyBody], ident: IdentityService) -> dict[str, str]:
        await verify_email(ident, data.token)
        return {"status": "verified"}
