"""The prepayment cap (DESIGN §5), as handed to the ledger from above.

Rules:

* After any credit to a customer's prepaid account the balance may not
  exceed the customer's cap. A credit that would pass it is refused before
  money is taken (`ensure_within_cap`, naming the largest amount allowed
  now); money that arrives anyway is credited only up to it (the credit
  paths in `app.ledger.movements`).
* The ledger does not read lines or plans, so it does not compute the cap:
  a `CapPolicy` registered from above with `set_cap_policy` does (the
  subscribers' fees of their lines today, the exit rules later). The
  caller hands over the terms (`CapTerms`: months, and the reference
  monthly fee for a customer without lines) from the settings, per call.
* A policy answers for many customers at once, so the ledger check computes
  every cap in a few queries. A cap is always a number: the store, the
  console, the API and `mvno ledger balance` show it and the headroom under it.
* Registration happens in the `handlers` modules, which
  `app.core.events.load_handlers()` imports; the ledger calls it before it
  reads the policy. No policy registered is a programming error
  (RuntimeError), never "no cap".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from sqlmodel import Session

from app.core.errors import N_
from app.core.events import load_handlers
from app.core.money import format_plain
from app.ledger.balances import customer_balance
from app.ledger.errors import CapExceeded


@dataclass(frozen=True)
class CapTerms:
    """What a cap is computed from, given by the caller (PREPAY_CAP_MONTHS and
    PREPAY_REFERENCE_MONTHLY in minor units, or a MoneyPolicy's)."""

    months: int
    reference_monthly_minor: int


# Given customer ids and the terms: each customer's cap in minor units of
# its prepaid currency (a key for every id given). It reads, never writes.
CapPolicy = Callable[[Session, Collection[int], CapTerms], Mapping[int, int]]

_policy: CapPolicy | None = None


def set_cap_policy(policy: CapPolicy | None) -> CapPolicy | None:
    """Register the policy the ledger enforces (replacing any before it); return the previous one.

    Called at import time by a `handlers` module above the ledger. A test
    swapping a policy in calls `load_handlers()` first (so the handlers'
    registration cannot replace it later) and puts the previous one back.
    """
    global _policy
    previous, _policy = _policy, policy
    return previous


def cap_policy() -> CapPolicy:
    """The registered policy, once every `handlers` module has been imported.

    :raises RuntimeError: no policy is registered (a programming error).
    """
    load_handlers()
    if _policy is None:
        raise RuntimeError(
            "No prepayment cap policy is registered (app.ledger.cap.set_cap_policy)."
        )
    return _policy


def prepaid_caps_minor(
    session: Session,
    *,
    customer_ids: Collection[int],
    cap_months: int,
    reference_monthly_minor: int,
) -> dict[int, int]:
    """The most each customer may hold prepaid, from the registered policy.

    :raises RuntimeError: no policy is registered.
    """
    terms = CapTerms(months=cap_months, reference_monthly_minor=reference_monthly_minor)
    caps = cap_policy()(session, customer_ids, terms)
    return {customer_id: caps[customer_id] for customer_id in customer_ids}


def prepaid_cap_minor(
    session: Session, *, customer_id: int, settings_months: int, reference_monthly_minor: int
) -> int:
    """The most a customer may hold prepaid (DESIGN §5).

    :raises RuntimeError: no policy is registered.
    """
    caps = prepaid_caps_minor(
        session,
        customer_ids=[customer_id],
        cap_months=settings_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    return caps[customer_id]


def headroom_minor(cap: int, balance_minor: int) -> int:
    """The largest credit a balance can take under `cap` (never negative)."""
    return max(cap - balance_minor, 0)


def cap_headroom_minor(
    session: Session, *, customer_id: int, cap_months: int, reference_monthly_minor: int
) -> int:
    """The largest credit the customer's prepaid balance can take now (never negative).

    Reads the cached balance, unlocked.
    :raises RuntimeError: no policy is registered.
    """
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    return headroom_minor(cap, customer_balance(session, customer_id=customer_id))


def ensure_within_cap(
    session: Session,
    *,
    customer_id: int,
    amount_minor: int,
    cap_months: int,
    reference_monthly_minor: int,
    balance_minor: int | None = None,
) -> None:
    """Refuse a credit of `amount_minor` that would take the balance above the cap.

    `balance_minor` is the balance the caller holds locked; without it the
    cached balance is read (unlocked, for a check before money is taken).
    :raises CapExceeded: naming the cap and the largest amount allowed now.
    """
    if balance_minor is None:
        balance_minor = customer_balance(session, customer_id=customer_id)
    cap = prepaid_cap_minor(
        session,
        customer_id=customer_id,
        settings_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
    )
    if balance_minor + amount_minor > cap:
        allowed = max(cap - balance_minor, 0)
        raise CapExceeded(
            N_(
                "This would take the balance above the prepayment cap of %(cap)s;"
                " the largest amount allowed now is %(allowed)s."
            ),
            field="amount",
            cap=format_plain(cap),
            allowed=format_plain(allowed),
            allowed_minor=allowed,
        )
