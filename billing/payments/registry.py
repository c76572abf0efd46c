"""Which building block delivers a paid order of each kind (``contract.Fulfil``). Top-ups
(``payments/top_up.py``) and paid memberships (``membership/terms.py``) register themselves with
:func:`register` when imported; :func:`_load_builtin` imports both."""

from __future__ import annotations

from lianka.billing.payments.contract import Fulfil
from lianka.billing.payments.errors import UnknownOrderKind

_FULFIL: dict[str, Fulfil] = {}


def register(kind: str, fulfil: Fulfil) -> None:
    _FULFIL[kind] = fulfil


def fulfilment(kind: str) -> Fulfil:
    _load_builtin()
    try:
        return _FULFIL[kind]
    except KeyError:
        raise UnknownOrderKind(f"No fulfilment is registered for order kind {kind!r}", field="kind") from None


def known(kind: str) -> bool:
    _load_builtin()
    return kind in _FULFIL


def _load_builtin() -> None:
    from lianka.billing.membership import terms  # noqa: F401 - registers "membership"
    from lianka.billing.payments import top_up  # noqa: F401 - registers "top_up"
