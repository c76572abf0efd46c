"""Member payments' pure parts: credentials sealed at rest, provider events and transactions read
as outcomes (whose merchant, which order, what state), and the stand-in's notification encryption
read back by the SDK's own decryption."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from lianka.billing.payments import crypto
from lianka.billing.payments.errors import PaymentsNotConfigured
from lianka.billing.payments.providers.stripe import event_outcome
from lianka.billing.payments.providers.wechatpay import transaction_outcome
from lianka.billing.wechatpay_standin import encrypt
from lianka.platform.settings import Settings

SETTINGS = Settings(secret_key="a-development-secret-" + "x" * 40)


def test_credentials_are_sealed_and_only_their_last_four_characters_are_shown() -> None:
    token = crypto.seal(SETTINGS, {"apiv3_key": "0123456789abcdef0123456789abWXYZ"})
    assert b"WXYZ" not in token
    assert crypto.unseal(SETTINGS, token) == {"apiv3_key": "0123456789abcdef0123456789abWXYZ"}
    assert crypto.last4("0123456789abcdef0123456789abWXYZ") == "…WXYZ"
    other = replace(SETTINGS, secret_key="another-secret-" + "y" * 40)
    with pytest.raises(PaymentsNotConfigured):
        crypto.unseal(other, token)  # another key cannot open it
    # a configured LIANKA_SECRETS_KEY is used instead of the derived key
    keyed = replace(SETTINGS, secrets_key="a-secrets-key-" + "z" * 40)
    with pytest.raises(PaymentsNotConfigured):
        crypto.unseal(keyed, token)
    assert crypto.unseal(keyed, crypto.seal(keyed, {"a": "b"})) == {"a": "b"}


def _event(type_: str, obj: dict[str, object]) -> dict[str, object]:
    return {"id": "evt_1", "type": type_, "created": 1_780_000_000, "data": {"object": obj}}


def test_stripe_events_about_member_orders_become_outcomes_and_others_are_left_to_billing() -> None:
    order, tenant = uuid.uuid4(), uuid.uuid4()
    meta = {"lianka_tenant": str(tenant), "lianka_order": str(order)}
    session = {"id": "cs_1", "payment_status": "paid", "payment_intent": "pi_1", "amount_total": 30000}
    done = event_outcome(_event("checkout.session.completed", {**session, "currency": "cny", "metadata": meta}))
    assert done is not None
    assert (done.order_id, done.state, done.provider_ref, done.amount, done.currency, done.tenant_ref) == (
        order, "paid", "pi_1", 30000, "CNY", str(tenant)
    )  # fmt: skip
    intent = event_outcome(
        _event(
            "payment_intent.succeeded", {"id": "pi_1", "amount_received": 30000, "currency": "cny", "metadata": meta}
        )
    )
    assert intent is not None and (intent.state, intent.provider_ref) == ("paid", "pi_1")
    expired = event_outcome(_event("checkout.session.expired", {"id": "cs_1", "metadata": meta}))
    assert expired is not None and expired.state == "expired"
    # a subscription's checkout names a plan, not an order: billing's own
    assert event_outcome(_event("checkout.session.completed", {"metadata": {"tenant_id": "x", "plan": "shop"}})) is None


def test_a_wechat_transaction_becomes_an_outcome() -> None:
    order, tenant = uuid.uuid4(), uuid.uuid4()
    tx = {
        "out_trade_no": order.hex,
        "transaction_id": "4200000001",
        "trade_state": "SUCCESS",
        "success_time": "2026-12-02T20:00:00+08:00",
        "attach": str(tenant),
        "amount": {"total": 30000, "payer_total": 30000, "currency": "CNY"},
    }
    out = transaction_outcome(tx)
    assert (out.order_id, out.state, out.provider_ref, out.amount, out.tenant_ref) == (
        order, "paid", "4200000001", 30000, str(tenant)
    )  # fmt: skip
    assert out.paid_at is not None and out.paid_at.isoformat() == "2026-12-02T12:00:00+00:00"
    assert transaction_outcome({**tx, "trade_state": "NOTPAY"}).state == "pending"
    assert transaction_outcome({**tx, "trade_state": "CLOSED"}).state == "expired"


def test_the_stand_ins_encryption_is_what_the_sdk_decrypts() -> None:
    from wechatpayv3.utils import aes_decrypt

    key = "0123456789abcdef0123456789abcdef"
    sealed = encrypt(key, json.dumps({"a": "支付成功"}, ensure_ascii=False), "transaction")
    opened = aes_decrypt(sealed["nonce"], sealed["ciphertext"], sealed["associated_data"], key)
    assert json.loads(opened) == {"a": "支付成功"}
    assert aes_decrypt(sealed["nonce"], sealed["ciphertext"], sealed["associated_data"], "f" * 32) is None
