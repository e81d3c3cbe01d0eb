"""Prepaid vouchers (充值卡): printing batches and redeeming them into the ledger.

PINs: 16 digits from `secrets` (about 53 bits), printed as four groups of
four and shown only once, by `create_voucher_batch`. The database keeps a
per-voucher random salt and `scrypt(pin, salt)`. 53 bits is too few for a
fast hash to be safe against someone holding a copy of the database (a GPU
tries ~10^10 SHA-256 a second, so one voucher falls in days), hence the
memory-hard scrypt with a cost of ~3 ms per PIN: a batch of 10,000 takes
about half a minute to print, and a stolen database costs far more than a
voucher is worth to brute-force. Online guessing is stopped by lockouts.

Lockouts are kept in `voucher_attempt` (like `login_attempt`), so they hold
across workers and restarts:

* a customer is locked once they have `max_failures` failed redemptions
  within the last `lockout_minutes` and since their last success;
* an address (IP) is locked once it has `max_failures_per_ip` failures in
  the same window, whichever customers it acts for.

A locked redemption is refused before the PIN is checked, so the right PIN
does not help during a lockout.

Transaction boundary: `redeem_voucher` records a failed attempt, flushes it
and then raises `VoucherInvalid`. The boundary MUST commit (not roll back)
when it catches `VoucherInvalid`, or the failure is not counted and the
lockout never triggers. Every other refusal writes nothing worth keeping and
may be rolled back as usual.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from app.core import limits
from app.core.audit import Actor, record_audit
from app.core.errors import N_, InvalidInput, clean_text
from app.core.events import emit
from app.core.money import check_amount
from app.core.throttle import locked_until
from app.ledger.events import CustomerCredited
from app.ledger.models import JournalEntry
from app.ledger.movements import credit_customer
from app.payments.errors import (
    VoucherAlreadyRedeemed,
    VoucherExpired,
    VoucherInvalid,
    VoucherLocked,
    VoucherNotFound,
    VoucherVoid,
)
from app.payments.models import Voucher, VoucherAttempt, VoucherBatch

MAX_BATCH = 10_000
PIN_DIGITS = 16
# scrypt cost: n=2**11, r=8 → 2 MiB and ~3 ms per PIN (see the module docstring).
_SCRYPT = {"n": 2**11, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class VoucherPolicy:
    max_failures: int = 5
    lockout_minutes: int = 30
    max_failures_per_ip: int = 20


def _new_pin() -> str:
    digits = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
    return " ".join(digits[i : i + 4] for i in range(0, PIN_DIGITS, 4))


def _normalize_pin(pin: str) -> str:
    return "".join(ch for ch in (pin or "") if ch not in " -")


def _normalize_serial(serial: str) -> str:
    return "".join(ch for ch in (serial or "") if ch not in " -").upper()[:40]


def _hash_pin(pin: str, salt_hex: str) -> str:
    return hashlib.scrypt(
        _normalize_pin(pin).encode(), salt=bytes.fromhex(salt_hex), maxmem=0, **_SCRYPT
    ).hex()


def _serial(batch_id: int, sequence: int) -> str:
    return f"V{batch_id:06d}{sequence:05d}"


def create_voucher_batch(
    session: Session,
    *,
    name: str,
    value_minor: int,
    count: int,
    expires_at: datetime,
    currency: str,
    actor: Actor,
    now: datetime,
) -> tuple[VoucherBatch, list[tuple[str, str]]]:
    """Create `count` vouchers of `value_minor` and return their (serial, PIN) pairs.

    This is the only time the PINs exist in clear; the audit row holds none.
    :raises InvalidInput: empty name, value not positive, count outside
        1..10000, or an expiry not after `now`.
    """
    name = clean_text(name, field="name", max_length=limits.LABEL, required=True)
    check_amount(value_minor, field="value")
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(N_("A batch holds 1 to %(max)s vouchers."), field="count", max=MAX_BATCH)
    if expires_at <= now:
        raise InvalidInput(N_("The expiry must be in the future."), field="expires_at")
    batch = VoucherBatch(
        name=name,
        value_minor=value_minor,
        currency=currency,
        count=count,
        expires_at=expires_at,
        created_by=actor.label or actor.kind,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    assert batch.id is not None
    pairs: list[tuple[str, str]] = []
    for sequence in range(1, count + 1):
        pin = _new_pin()
        salt = secrets.token_hex(16)
        serial = _serial(batch.id, sequence)
        session.add(
            Voucher(batch_id=batch.id, serial=serial, pin_salt=salt, pin_hash=_hash_pin(pin, salt))
        )
        pairs.append((serial, pin))
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="voucher.batch_create",
        now=now,
        target_type="voucher_batch",
        target_id=batch.id,
        details={
            "name": name,
            "count": count,
            "value_minor": value_minor,
            "currency": currency,
            "first_serial": pairs[0][0],
            "last_serial": pairs[-1][0],
        },
    )
    return batch, pairs


def list_batches(session: Session) -> list[VoucherBatch]:
    """Every voucher batch, newest first."""
    return list(session.exec(select(VoucherBatch).order_by(col(VoucherBatch.id).desc())))


def get_batch(session: Session, batch_id: int) -> VoucherBatch:
    """:raises VoucherNotFound: no such batch."""
    batch = session.get(VoucherBatch, batch_id)
    if batch is None:
        raise VoucherNotFound(N_("No voucher batch %(id)s."), id=batch_id)
    return batch


def count_by_status(session: Session) -> dict[int, dict[str, int]]:
    """For each batch id, how many of its vouchers are in each status."""
    rows = session.exec(
        select(Voucher.batch_id, Voucher.status, func.count()).group_by(
            col(Voucher.batch_id), col(Voucher.status)
        )
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for batch_id, status, count in rows:
        counts.setdefault(batch_id, {})[status] = int(count)
    return counts


def list_vouchers(
    session: Session, *, batch_id: int, limit: int = 200, offset: int = 0
) -> tuple[list[Voucher], int]:
    """One page of a batch's vouchers in serial order, and how many it has."""
    query = select(Voucher).where(Voucher.batch_id == batch_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Voucher.serial)).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def _lockout_state(
    session: Session, *, customer_id: int, ip: str, policy: VoucherPolicy, now: datetime
) -> datetime | None:
    window_start = now - timedelta(minutes=policy.lockout_minutes)
    mine = VoucherAttempt.customer_id == customer_id
    last_success = session.exec(
        select(func.max(VoucherAttempt.at)).where(mine, col(VoucherAttempt.success).is_(True))
    ).one()
    by_customer = locked_until(
        session,
        VoucherAttempt,
        mine,
        since=max(window_start, last_success) if last_success else window_start,
        limit=policy.max_failures,
        minutes=policy.lockout_minutes,
    )
    if by_customer is not None or not ip:
        return by_customer
    return locked_until(
        session,
        VoucherAttempt,
        VoucherAttempt.ip == ip,
        since=window_start,
        limit=policy.max_failures_per_ip,
        minutes=policy.lockout_minutes,
    )


def redeem_voucher(
    session: Session,
    *,
    customer_id: int,
    serial: str,
    pin: str,
    ip: str,
    actor: Actor,
    now: datetime,
    cap_months: int,
    reference_monthly_minor: int,
    policy: VoucherPolicy,
    renew_suspended: bool = True,
) -> JournalEntry:
    """Credit a voucher's value to the customer's prepaid balance; usable once.

    The credit is then announced (`CustomerCredited`, in this transaction:
    charging renews and resumes the lines an unpaid renewal suspended),
    unless `renew_suspended` is False: a voucher redeemed to pay a store
    order must reach the order first.

    Checks the lockouts, then locks the voucher row and verifies the PIN in
    constant time. The credit's idempotency key is `voucher:<id>`.
    The boundary MUST commit when it catches `VoucherInvalid`: the failed
    attempt is flushed before the raise and counts towards the lockout.
    :raises VoucherLocked: too many failures for this customer or address.
    :raises VoucherInvalid: unknown serial or wrong PIN (alike).
    :raises VoucherVoid, VoucherExpired, VoucherAlreadyRedeemed: refused.
    :raises CapExceeded: the credit would pass the prepayment cap; the
        voucher stays available.
    """
    ip = (ip or "")[:64]
    voucher = _unlock_voucher(
        session, customer_id=customer_id, serial=serial, pin=pin, ip=ip, policy=policy, now=now
    )
    batch = _redeemable_batch(session, voucher, now=now)
    entry = credit_customer(
        session,
        customer_id=customer_id,
        amount_minor=batch.value_minor,
        source_kind="voucher_float",
        idempotency_key=f"voucher:{voucher.id}",
        actor=actor,
        now=now,
        cap_months=cap_months,
        reference_monthly_minor=reference_monthly_minor,
        currency=batch.currency,
        memo=f"voucher {voucher.serial}",
        external_ref=voucher.serial,
    )
    voucher.status = "redeemed"
    voucher.redeemed_by_customer_id = customer_id
    voucher.redeemed_at = now
    voucher.journal_entry_id = entry.id
    session.add(voucher)
    session.add(VoucherAttempt(customer_id=customer_id, ip=ip, success=True, at=now))
    record_audit(
        session,
        actor=actor,
        action="voucher.redeem",
        now=now,
        target_type="voucher",
        target_id=voucher.serial,
        details={"customer_id": customer_id, "entry_id": entry.id},
        ip=ip or None,
    )
    session.flush()
    if renew_suspended:
        emit(session, CustomerCredited(customer_id=customer_id, actor=actor, now=now))
    return entry


def _unlock_voucher(
    session: Session,
    *,
    customer_id: int,
    serial: str,
    pin: str,
    ip: str,
    policy: VoucherPolicy,
    now: datetime,
) -> Voucher:
    """The voucher `serial` locked, once its PIN checks out (see `redeem_voucher`).

    :raises VoucherLocked: too many failures for this customer or address.
    :raises VoucherInvalid: unknown serial or wrong PIN; the failed attempt is flushed.
    """
    locked_until = _lockout_state(session, customer_id=customer_id, ip=ip, policy=policy, now=now)
    if locked_until is not None:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise VoucherLocked(
            N_("Too many failed voucher attempts. Try again in %(minutes)s minutes."),
            field="pin",
            minutes=minutes,
        )
    voucher = session.exec(
        select(Voucher)
        .where(Voucher.serial == _normalize_serial(serial))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    # Hash even for an unknown serial so both refusals take the same time.
    expected = voucher.pin_hash if voucher else "0" * 64
    salt = voucher.pin_salt if voucher else "00" * 16
    ok = hmac.compare_digest(_hash_pin(pin, salt), expected) and voucher is not None
    if not ok or voucher is None:
        session.add(VoucherAttempt(customer_id=customer_id, ip=ip, success=False, at=now))
        session.flush()
        raise VoucherInvalid(N_("Wrong voucher serial or PIN."), field="pin")
    return voucher


def _redeemable_batch(session: Session, voucher: Voucher, *, now: datetime) -> VoucherBatch:
    """The batch of a voucher that may be redeemed at `now`.

    :raises VoucherVoid, VoucherAlreadyRedeemed, VoucherExpired: it may not.
    """
    if voucher.status == "void":
        raise VoucherVoid(N_("This voucher has been cancelled."), field="serial")
    if voucher.status == "redeemed":
        raise VoucherAlreadyRedeemed(N_("This voucher has already been used."), field="serial")
    batch = session.get(VoucherBatch, voucher.batch_id)
    assert batch is not None and voucher.id is not None
    if now >= batch.expires_at:
        raise VoucherExpired(N_("This voucher has expired."), field="serial")
    return batch


def void_voucher(session: Session, *, serial: str, actor: Actor, now: datetime) -> Voucher:
    """Cancel an unused voucher (lost, stolen). Idempotent for a void voucher.

    :raises VoucherNotFound: no such serial.
    :raises VoucherAlreadyRedeemed: it was used; reverse the credit instead.
    """
    voucher = session.exec(
        select(Voucher)
        .where(Voucher.serial == _normalize_serial(serial))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if voucher is None:
        raise VoucherNotFound(N_("No voucher %(serial)s."), field="serial", serial=serial)
    if voucher.status == "redeemed":
        raise VoucherAlreadyRedeemed(N_("This voucher has already been used."), field="serial")
    if voucher.status != "void":
        voucher.status = "void"
        session.add(voucher)
        record_audit(
            session,
            actor=actor,
            action="voucher.void",
            now=now,
            target_type="voucher",
            target_id=voucher.serial,
        )
        session.flush()
    return voucher
