"""Stripe Connect in the stand-in: what settlement payouts call through the real SDK.

* ``POST/GET /v1/accounts[/{id}]`` — Express accounts (``payouts_enabled`` false until onboarding).
* ``POST /v1/account_links`` — an onboarding link to ``GET /connect/onboarding/{acct}``, a hosted
  page whose *Finish* button completes the account (``account.updated``) and returns to
  ``return_url``; :meth:`ConnectMixin.complete_onboarding` does the same from a test.
* ``POST/GET /v1/transfers[/{id}]`` to a ``destination`` that can receive transfers (else Stripe's
  ``400``), emitting ``transfer.created``; ``POST /v1/transfers/{id}/reversals`` reverses one
  (``transfer.reversed``).

For tests: :meth:`fail_next_transfer` makes the next transfer to an account refuse (as Stripe does
when the platform's balance is short), :meth:`reverse_transfer` reverses one, and
:meth:`fail_bank_payout` emits the ``payout.failed`` a connected account's own bank payout makes.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect

if TYPE_CHECKING:
    from lianka.billing.stripe_standin import StripeStandin

Obj = dict[str, Any]


@dataclass
class ConnectState:
    accounts: dict[str, Obj] = field(default_factory=dict)
    links: dict[str, Obj] = field(default_factory=dict)
    transfers: dict[str, Obj] = field(default_factory=dict)
    #: account id -> the error its next transfer answers with
    fail_next: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, code: str) -> Exception:
    from lianka.billing.stripe_standin import StripeError

    return StripeError(status, message, code)


class ConnectMixin:
    """Connect's part of :class:`~lianka.billing.stripe_standin.StripeStandin` (its state lives in
    ``connect``, made on first use, so the dataclass's fields stay as they are)."""

    _id: Callable[[str], str]
    now: Callable[[], int]
    _emit: Callable[[str, Obj], Obj]
    public_base: str

    @property
    def connect(self) -> ConnectState:
        state = self.__dict__.get("_connect_state")
        if state is None:
            state = self.__dict__["_connect_state"] = ConnectState()
        assert isinstance(state, ConnectState)
        return state

    def _emit_for(self, type_: str, obj: Obj, account: str | None = None) -> Obj:
        event = self._emit(type_, obj)
        if account is not None:
            event["account"] = account
        return event

    # --- the REST API -------------------------------------------------------------------------------

    def create_account(self, params: Obj) -> Obj:
        if params.get("type") != "express":
            raise _error(400, "Only type=express accounts are supported by the stand-in", "parameter_invalid")
        aid = self._id("acct")
        self.connect.accounts[aid] = {
            "id": aid,
            "object": "account",
            "created": self.now(),
            "type": "express",
            "business_profile": params.get("business_profile", {}),
            "capabilities": {"transfers": "inactive"},
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "metadata": params.get("metadata", {}),
        }
        return self.connect.accounts[aid]

    def account(self, aid: str) -> Obj:
        if aid not in self.connect.accounts:
            raise _error(404, f"No such account: '{aid}'", "resource_missing")
        return self.connect.accounts[aid]

    def create_account_link(self, params: Obj) -> Obj:
        aid = str(params.get("account", ""))
        self.account(aid)
        if params.get("type") != "account_onboarding":
            raise _error(400, "Only type=account_onboarding is supported", "parameter_invalid")
        link = {
            "object": "account_link",
            "created": self.now(),
            "expires_at": self.now() + 300,
            "url": f"{self.public_base}/connect/onboarding/{aid}",
            "_return_url": params.get("return_url", ""),
        }
        self.connect.links[aid] = link
        return link

    def create_transfer(self, params: Obj) -> Obj:
        destination = str(params.get("destination", ""))
        account = self.account(destination)
        if account["capabilities"].get("transfers") != "active":
            raise _error(
                400,
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                "insufficient_capabilities_for_transfer",
            )
        failure = self.connect.fail_next.pop(destination, None)
        if failure is not None:
            raise _error(400, failure, "balance_insufficient")
        amount = int(params["amount"])
        if amount <= 0:
            raise _error(400, "Invalid positive integer", "parameter_invalid_integer")
        tid = self._id("tr")
        transfer = {
            "id": tid,
            "object": "transfer",
            "created": self.now(),
            "amount": amount,
            "amount_reversed": 0,
            "currency": params.get("currency"),
            "destination": destination,
            "description": params.get("description"),
            "transfer_group": params.get("transfer_group"),
            "metadata": params.get("metadata", {}),
            "reversed": False,
            "reversals": {"object": "list", "data": []},
            "livemode": False,
        }
        self.connect.transfers[tid] = transfer
        self._emit_for("transfer.created", transfer)
        return transfer

    def transfer(self, tid: str) -> Obj:
        if tid not in self.connect.transfers:
            raise _error(404, f"No such transfer: '{tid}'", "resource_missing")
        return self.connect.transfers[tid]

    # --- what happens on Stripe's side --------------------------------------------------------------

    def complete_onboarding(self, aid: str) -> list[Obj]:
        """The branch finished Stripe's onboarding: the account can receive transfers."""
        account, start = self.account(aid), len(self.events)
        account.update(
            details_submitted=True, charges_enabled=True, payouts_enabled=True, capabilities={"transfers": "active"}
        )
        self._emit_for("account.updated", account, aid)
        return self.events[start:]

    def fail_next_transfer(self, aid: str, message: str = "Insufficient funds in Stripe balance") -> None:
        self.connect.fail_next[aid] = message

    def reverse_transfer(self, tid: str, amount: int | None = None) -> list[Obj]:
        transfer, start = self.transfer(tid), len(self.events)
        taken = transfer["amount"] - transfer["amount_reversed"] if amount is None else amount
        reversal = {"id": self._id("trr"), "object": "transfer_reversal", "amount": taken, "transfer": tid}
        transfer["reversals"]["data"].append(reversal)
        transfer["amount_reversed"] += taken
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        self._emit_for("transfer.reversed", transfer)
        return self.events[start:]

    def fail_bank_payout(self, aid: str, message: str = "The bank account has been closed") -> list[Obj]:
        """The connected account's own payout to its bank failed (our transfer stays done)."""
        self.account(aid)
        start = len(self.events)
        payout = {
            "id": self._id("po"),
            "object": "payout",
            "created": self.now(),
            "status": "failed",
            "failure_code": "account_closed",
            "failure_message": message,
        }
        self._emit_for("payout.failed", payout, aid)
        return self.events[start:]

    if TYPE_CHECKING:
        events: list[Obj]


Call = Callable[[Request[Any, Any, Any], Any], Awaitable[Response[Obj]]]


def connect_routes(standin: StripeStandin, call: Call) -> list[HTTPRouteHandler]:
    """The Connect routes, served by the stand-in's app (``build_app``)."""

    @post("/v1/accounts")
    async def accounts_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.create_account)

    @get("/v1/accounts/{oid:str}")
    async def accounts_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: standin.account(oid))

    @post("/v1/account_links")
    async def links_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        return await call(request, standin.create_account_link)

    @post("/v1/transfers")
    async def transfers_create(request: Request[Any, Any, Any]) -> Response[Obj]:
        start = len(standin.events)
        response = await call(request, standin.create_transfer)
        await standin._after(standin.events[start:])
        return response

    @get("/v1/transfers/{oid:str}")
    async def transfers_get(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        return await call(request, lambda _: standin.transfer(oid))

    @post("/v1/transfers/{oid:str}/reversals")
    async def reversals_create(request: Request[Any, Any, Any], oid: FromPath[str]) -> Response[Obj]:
        events: list[Obj] = []

        def reverse(params: Obj) -> Obj:
            events.extend(standin.reverse_transfer(oid, int(params["amount"]) if "amount" in params else None))
            reversal: Obj = standin.transfer(oid)["reversals"]["data"][-1]
            return reversal

        response = await call(request, reverse)
        await standin._after(events)
        return response

    @get("/connect/onboarding/{oid:str}", media_type="text/html")
    async def onboarding_page(oid: FromPath[str]) -> Response[str]:
        account = standin.connect.accounts.get(oid)
        if account is None:
            return Response("No such account", status_code=404, media_type="text/plain")
        name = html.escape(str(account.get("business_profile", {}).get("name", oid)))
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Stripe stand-in onboarding</title></head>"
            f"<body><h1>{name}</h1><p>Express onboarding (local Stripe stand-in: nothing is verified)</p>"
            f"<form method='post' action='/connect/onboarding/{html.escape(oid)}/finish'>"
            "<button>Finish onboarding</button></form></body></html>"
        )
        return Response(page, media_type="text/html")

    @post("/connect/onboarding/{oid:str}/finish")
    async def onboarding_finish(oid: FromPath[str]) -> Response[Any]:
        if oid not in standin.connect.accounts:
            return Response("No such account", status_code=404, media_type="text/plain")
        await standin._after(standin.complete_onboarding(oid))
        back = str(standin.connect.links.get(oid, {}).get("_return_url") or "/")
        return Redirect(back, status_code=303)

    return [
        accounts_create,
        accounts_get,
        links_create,
        transfers_create,
        transfers_get,
        reversals_create,
        onboarding_page,
        onboarding_finish,
    ]
