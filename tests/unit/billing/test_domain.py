"""The subscription state machine, without a database: every transition, ordering, the clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lianka.billing import domain
from lianka.billing.domain import Account, Kind, Signal, Status

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SUB = "sub_1"


def account(status: Status = Status.TRIALING, **fields: object) -> Account:
    base = replace(domain.new_account(T0), status=status, stripe_customer_id="cus_1")
    if status is not Status.TRIALING:
        base = replace(base, stripe_subscription_id=SUB)
    return replace(base, **fields)  # type: ignore[arg-type]


def sig(kind: Kind, at: datetime, stripe_status: str | None = None, sub: str | None = SUB, **kw: object) -> Signal:
    return Signal(kind, at, "cus_1", sub, stripe_status=stripe_status, **kw)  # type: ignore[arg-type]


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_a_new_merchant_tries_a_paid_plan_for_fourteen_days() -> None:
    a = domain.new_account(T0)
    assert a.status is Status.TRIALING
    assert a.plan == domain.TRIAL_PLAN != domain.FREE_PLAN
    assert a.trial_ends_at == T0 + timedelta(days=14)


# every allowed move, each by the signal that makes it
MOVES = [
    (Status.TRIALING, sig(Kind.SUBSCRIPTION, at(1), "active", plan="shop"), Status.ACTIVE),
    (Status.TRIALING, sig(Kind.SUBSCRIPTION, at(1), "past_due"), Status.PAST_DUE),
    (Status.TRIALING, sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled"), None),  # not its subscription (yet)
    (Status.ACTIVE, sig(Kind.PAYMENT_FAILED, at(1)), Status.PAST_DUE),
    (Status.ACTIVE, sig(Kind.SUBSCRIPTION, at(1), "past_due"), Status.PAST_DUE),
    (Status.ACTIVE, sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled"), Status.CANCELED),
    (Status.ACTIVE, sig(Kind.SUBSCRIPTION, at(1), "unpaid"), None),  # active cannot jump to restricted
    (Status.PAST_DUE, sig(Kind.INVOICE_PAID, at(1)), Status.ACTIVE),
    (Status.PAST_DUE, sig(Kind.SUBSCRIPTION, at(1), "active"), Status.ACTIVE),
    (Status.PAST_DUE, sig(Kind.SUBSCRIPTION, at(1), "unpaid"), Status.RESTRICTED),
    (Status.PAST_DUE, sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled"), Status.CANCELED),
    (Status.RESTRICTED, sig(Kind.INVOICE_PAID, at(1)), Status.ACTIVE),
    (Status.RESTRICTED, sig(Kind.PAYMENT_FAILED, at(1)), Status.RESTRICTED),
    (Status.RESTRICTED, sig(Kind.SUBSCRIPTION, at(1), "past_due"), Status.RESTRICTED),
    (Status.RESTRICTED, sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled"), Status.CANCELED),
    (Status.CANCELED, sig(Kind.INVOICE_PAID, at(1)), None),
    (Status.CANCELED, sig(Kind.SUBSCRIPTION, at(1), "active"), None),  # same subscription: stays canceled
    (Status.CANCELED, sig(Kind.SUBSCRIPTION, at(1), "active", sub="sub_2"), Status.ACTIVE),  # a new checkout
]


@pytest.mark.parametrize(("start", "signal", "expected"), MOVES)
def test_each_transition(start: Status, signal: Signal, expected: Status | None) -> None:
    before = account(start, past_due_since=at(-1) if start in (Status.PAST_DUE, Status.RESTRICTED) else None)
    decision = domain.apply(before, signal)
    if expected is None:
        assert not decision.applied and decision.account == before and decision.reason
        return
    assert decision.applied, decision.reason
    assert decision.account.status is expected
    assert decision.account.state_at == signal.at
    if expected is not start:
        assert expected in domain.TRANSITIONS[start]


def test_a_stripe_trial_that_is_deleted_is_canceled() -> None:
    trial = account(Status.TRIALING, stripe_subscription_id=SUB)
    decision = domain.apply(trial, sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled"))
    assert decision.account.status is Status.CANCELED and decision.account.canceled_at == at(1)


def test_the_table_admits_no_move_the_state_machine_forbids() -> None:
    assert Status.TRIALING not in domain.TRANSITIONS[Status.ACTIVE]
    assert Status.RESTRICTED not in domain.TRANSITIONS[Status.ACTIVE]  # only through past due and grace
    assert domain.TRANSITIONS[Status.CANCELED] == {Status.ACTIVE, Status.TRIALING}


def test_past_due_starts_a_grace_that_a_second_failure_does_not_extend() -> None:
    first = domain.apply(account(Status.ACTIVE), sig(Kind.PAYMENT_FAILED, at(1))).account
    assert first.status is Status.PAST_DUE
    assert first.grace_until == at(1) + timedelta(days=domain.GRACE_DAYS)
    again = domain.apply(first, sig(Kind.PAYMENT_FAILED, at(30))).account
    assert again.grace_until == first.grace_until
    paid = domain.apply(again, sig(Kind.INVOICE_PAID, at(31))).account
    assert paid.status is Status.ACTIVE and paid.grace_until is None and paid.past_due_since is None


def test_the_clock_restricts_only_once_the_grace_has_run_out() -> None:
    past_due = domain.apply(account(Status.ACTIVE), sig(Kind.PAYMENT_FAILED, at(0))).account
    assert past_due.grace_until is not None
    assert not domain.tick(past_due, past_due.grace_until - timedelta(seconds=1)).applied
    restricted = domain.tick(past_due, past_due.grace_until).account
    assert restricted.status is Status.RESTRICTED
    assert not domain.tick(restricted, past_due.grace_until + timedelta(days=30)).applied


def test_a_trial_that_ends_unpaid_becomes_past_due_then_restricted() -> None:
    trial = domain.new_account(T0)
    assert not domain.tick(trial, trial.trial_ends_at - timedelta(seconds=1)).applied
    due = domain.tick(trial, trial.trial_ends_at).account
    assert due.status is Status.PAST_DUE and due.grace_until == trial.trial_ends_at + timedelta(days=7)
    late = domain.tick(trial, trial.trial_ends_at + timedelta(days=8)).account  # the job did not run for a week
    assert late.status is Status.RESTRICTED
    subscribed = replace(trial, stripe_subscription_id=SUB)  # Stripe runs this trial: the clock leaves it
    assert not domain.tick(subscribed, trial.trial_ends_at + timedelta(days=30)).applied


def test_an_older_event_never_undoes_a_newer_one() -> None:
    paid = domain.apply(account(Status.PAST_DUE, past_due_since=at(0)), sig(Kind.INVOICE_PAID, at(5))).account
    stale = domain.apply(paid, sig(Kind.SUBSCRIPTION, at(4), "past_due"))
    # the subscription's own facts may still be its newest word, but the status stays the newer one
    assert stale.account.status is Status.ACTIVE and stale.account.state_at == at(5)
    assert stale.account.past_due_since is None and stale.account.grace_until is None
    failed = domain.apply(paid, sig(Kind.PAYMENT_FAILED, at(4)))
    assert not failed.applied and failed.account == paid


def test_events_about_another_subscription_change_nothing() -> None:
    live = account(Status.ACTIVE)
    for signal in (
        sig(Kind.INVOICE_PAID, at(1), sub="sub_other"),
        sig(Kind.SUBSCRIPTION_DELETED, at(1), "canceled", sub="sub_other"),
        sig(Kind.SUBSCRIPTION, at(1), "active", sub="sub_other"),
        sig(Kind.INVOICE_PAID, at(1), sub=None),
    ):
        decision = domain.apply(live, signal)
        assert not decision.applied and decision.account == live


STATUS_SIGNALS = st.one_of(
    st.builds(lambda s: (Kind.SUBSCRIPTION, s), st.sampled_from(sorted(domain.STRIPE_STATUS))),
    st.sampled_from([(Kind.INVOICE_PAID, None), (Kind.PAYMENT_FAILED, None), (Kind.SUBSCRIPTION_DELETED, "canceled")]),
)


@given(
    st.sampled_from(list(Status)),
    st.lists(st.tuples(st.integers(0, 48), STATUS_SIGNALS, st.sampled_from([SUB, "sub_2"])), max_size=15),
)
def test_any_delivery_sequence_never_goes_backwards(start: Status, deliveries) -> None:
    """Whatever arrives, in whatever order, as often as it likes: the applied time never decreases,
    a redelivered event changes nothing, and the status moves only along the table."""
    a = account(start, past_due_since=at(-1) if start in (Status.PAST_DUE, Status.RESTRICTED) else None)
    for hours, (kind, stripe_status), sub in deliveries:
        s = sig(kind, at(hours), stripe_status, sub=sub)
        decision = domain.apply(a, s)
        after = decision.account
        if decision.applied and a.state_at is not None and s.at < a.state_at:
            # overtaken by a newer event: only the subscription's own facts, from the newest such event
            assert kind in (Kind.SUBSCRIPTION, Kind.SUBSCRIPTION_DELETED) and sub == a.stripe_subscription_id
            assert a.subscription_at is None or s.at >= a.subscription_at
            assert (after.status, after.state_at, after.subscription_at) == (a.status, a.state_at, s.at)
        elif decision.applied:
            assert after.state_at == s.at
            assert after.status is a.status or after.status in domain.TRANSITIONS[a.status]
        else:
            assert after == a
        assert domain.apply(after, s).account == after  # the same event again: no change
        a = after


def test_a_plan_change_overtaken_by_its_invoice_still_changes_the_plan() -> None:
    """Stripe sends a plan change's ``customer.subscription.updated`` and the proration's ``invoice.paid``
    together; when two workers apply the newer invoice first, the plan change must still land — and
    must not move the status or its clock back."""
    a = account(Status.ACTIVE, plan="shop", state_at=at(0), subscription_at=at(0))
    paid = domain.apply(a, sig(Kind.INVOICE_PAID, at(2)))
    assert paid.applied and paid.account.state_at == at(2)
    upgraded = sig(Kind.SUBSCRIPTION, at(1), "past_due", plan="chain", current_period_end=at(720))
    late = domain.apply(paid.account, upgraded)
    assert late.applied, late.reason
    assert (late.account.plan, late.account.current_period_end) == ("chain", at(720))
    assert (late.account.status, late.account.state_at, late.account.subscription_at) == (Status.ACTIVE, at(2), at(1))
    # an even older subscription event changes nothing any more, nor does the same one again
    older = domain.apply(late.account, sig(Kind.SUBSCRIPTION, at(0.5), "active", plan="shop"))
    assert not older.applied and older.account == late.account
    assert domain.apply(late.account, upgraded).account == late.account
    # a late word about another subscription, or after a cancellation, stays ignored
    assert not domain.apply(paid.account, sig(Kind.SUBSCRIPTION, at(1), "active", sub="sub_9", plan="chain")).applied
    canceled = replace(paid.account, status=Status.CANCELED)
    assert not domain.apply(canceled, upgraded).applied


def test_signal_reads_both_api_shapes_of_an_invoice() -> None:
    base = {"id": "evt_1", "created": 1_780_000_000, "type": "invoice.paid"}
    new = {
        **base,
        "data": {
            "object": {
                "customer": "cus_1",
                "parent": {
                    "subscription_details": {"subscription": SUB, "metadata": {"plan": "shop", "tenant_id": "t"}}
                },
            }
        },
    }
    old = {**base, "data": {"object": {"customer": "cus_1", "subscription": SUB}}}
    for event in (new, old):
        s = domain.signal_from_event(event)
        assert (s.kind, s.customer, s.subscription) == (Kind.INVOICE_PAID, "cus_1", SUB)
    assert domain.signal_from_event(new).plan == "shop"
    with pytest.raises(domain.Unusable):
        domain.signal_from_event({**base, "type": "charge.succeeded", "data": {"object": {}}})


def test_canceled_falls_back_to_the_free_plan() -> None:
    assert domain.effective_plan(account(Status.CANCELED, plan="chain")) == domain.FREE_PLAN
    assert domain.effective_plan(account(Status.RESTRICTED, plan="chain")) == "chain"
