"""SIM stock: a line takes an in-stock SIM, and its SIM follows the line's state.

in_stock → assigned or active (taken by a line); assigned → active (its
line activated); assigned or active → blocked (a lost or stolen SIM swapped
out); assigned, active or blocked → retired (its line ended). Each move is
one conditional UPDATE, so two lines racing for one SIM cannot both get it.
SIMs arrive through the all-or-nothing file import (numbering/sim_import.py).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from app.core.errors import N_, InvalidInput
from numbering.common import MAX_PAGE
from numbering.errors import SimNotFound, SimUnavailable
from numbering.models import SIM_KINDS, SIM_STATUSES, Sim

# SIM states a SIM may move to, and from which: assigned → active when its line
# is activated; assigned or active → blocked when a lost or stolen SIM is
# swapped out; assigned, active or blocked → retired when its line ends.
_SIM_MOVES: dict[str, tuple[str, ...]] = {
    "active": ("assigned",),
    "blocked": ("assigned", "active"),
    "retired": ("assigned", "active", "blocked"),
}


def set_sim_status(session: Session, *, sim_id: int, status: str, now: datetime) -> Sim:
    """Move a line's SIM to `active`, `blocked` or `retired` (see `_SIM_MOVES`).

    One conditional UPDATE. Idempotent: a SIM already in `status` is
    returned unchanged. A SIM in any other state is left alone and
    returned as it is — its line's change must not fail because stock
    records are behind — so callers read `sim.status` to see what happened.
    """
    assert status in _SIM_MOVES, status
    statement = (
        update(Sim)
        .where(col(Sim.id) == sim_id, col(Sim.status).in_(_SIM_MOVES[status]))
        .values(status=status, status_changed_at=now)
        .returning(Sim)
    )
    sim = session.scalars(
        statement,
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()
    if sim is None:
        sim = session.get(Sim, sim_id)
        assert sim is not None, f"no SIM {sim_id}"
    return sim


def take_sim_from_stock(
    session: Session, *, iccid: str, host_id: int, status: str, now: datetime
) -> Sim:
    """Give the in-stock SIM `iccid` of host `host_id` to a line, as `assigned` or `active`.

    One conditional UPDATE (in_stock → `status`), so two callers racing for
    one SIM cannot both get it. Not idempotent: a SIM already taken is refused.
    :raises SimNotFound: no SIM has this ICCID.
    :raises SimUnavailable: the SIM is of another host or not in stock.
    """
    assert status in ("assigned", "active"), status
    value = re.sub(r"\s", "", iccid or "")
    if not value:
        raise InvalidInput(N_("Enter the new SIM's ICCID."), field="iccid")
    if len(value) > 22 or not value.isdigit():
        raise SimNotFound(N_("No SIM with ICCID %(iccid)s."), field="iccid", iccid=value[:22])
    statement = (
        update(Sim)
        .where(col(Sim.iccid) == value, col(Sim.host_id) == host_id, col(Sim.status) == "in_stock")
        .values(status=status, status_changed_at=now)
        .returning(Sim)
    )
    sim = session.scalars(
        statement,
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).first()
    if sim is not None:
        return sim
    found = session.exec(select(Sim).where(Sim.iccid == value)).first()
    if found is None:
        raise SimNotFound(N_("No SIM with ICCID %(iccid)s."), field="iccid", iccid=value)
    if found.host_id != host_id:
        raise SimUnavailable(
            N_("SIM %(iccid)s belongs to another host's network."), field="iccid", iccid=value
        )
    raise SimUnavailable(
        N_("SIM %(iccid)s is not in stock (its status is %(status)s)."),
        field="iccid",
        iccid=value,
        status=found.status,
    )


def list_sims(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Sim], int]:
    """SIMs in import order, paged and optionally filtered; returns (sims, total). Reads only.

    `page` is clamped to 1–1,000,000 and `per_page` to 1–200.
    :raises InvalidInput: an unknown status or kind.
    """
    if status is not None and status not in SIM_STATUSES:
        raise InvalidInput(N_("Unknown SIM status %(status)r."), field="status", status=status)
    if kind is not None and kind not in SIM_KINDS:
        raise InvalidInput(N_("Unknown SIM kind %(kind)r."), field="kind", kind=kind)
    page = min(max(int(page), 1), MAX_PAGE)
    per_page = min(max(int(per_page), 1), 200)
    conditions = []
    if status is not None:
        conditions.append(Sim.status == status)
    if kind is not None:
        conditions.append(Sim.kind == kind)
    query = (
        select(Sim)
        .where(*conditions)
        .order_by(col(Sim.id))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    total = session.exec(select(func.count()).select_from(Sim).where(*conditions)).one()
    return list(session.exec(query)), total


def count_sims_by_status(session: Session) -> dict[str, int]:
    """How many SIMs are in each status, with every known status present (0 if none)."""
    counts = dict.fromkeys(SIM_STATUSES, 0)
    counts.update(
        {
            status: n
            for status, n in session.exec(
                select(Sim.status, func.count()).group_by(col(Sim.status))
            )
        }
    )
    return counts


def count_sims(session: Session, *, status: str) -> int:
    """How many SIMs have `status` now, through the index on status:
    `count_sims_by_status(session)[status]`."""
    return session.exec(select(func.count()).select_from(Sim).where(Sim.status == status)).one()


def retire_sims(session: Session, *, sim_ids: list[int], now: datetime) -> int:
    """Retire the SIMs of ended lines, set-based (the `retired` move of `set_sim_status`).

    SIMs already retired or in another state are left alone; returns how many changed.
    """
    changed = 0
    for start in range(0, len(sim_ids), 5000):
        result = session.execute(
            update(Sim)
            .where(col(Sim.id).in_(sim_ids[start : start + 5000]))
            .where(col(Sim.status).in_(_SIM_MOVES["retired"]))
            .values(status="retired", status_changed_at=now)
            .execution_options(synchronize_session=False)
        )
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Sim):
            session.expire(instance)
    return changed
