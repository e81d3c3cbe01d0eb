"""JSON API of numbers and SIMs (DESIGN §6, §14): number blocks, search, golden tiers, SIM stock."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.web.api import bp
from app.web.api.numbers_schemas import (
    BlockIn,
    BlockList,
    BlockOut,
    NumberPageOut,
    NumberQuery,
    SimImportIn,
    SimImportOut,
    SimPage,
    SimQuery,
    TierIn,
    TierList,
    TierOut,
)
from app.web.api.security import requires
from app.web.context import current_actor, db_session
from numbering.blocks import add_number_block, list_blocks
from numbering.search import search_numbers
from numbering.sim_import import import_sims
from numbering.sims import count_sims_by_status, list_sims
from numbering.tiers import list_tiers, set_tier_surcharge
from wholesale import services as wholesale


def _block(summary: Any) -> dict[str, Any]:
    return {
        "id": summary.id,
        "host": summary.host_code,
        "first": summary.first,
        "last": summary.last,
        "size": summary.size,
        "received_at": summary.received_at,
        "counts": summary.counts,
    }


@bp.get("/number-blocks")
@requires("numbers.view")
@bp.output(BlockList)
def block_list() -> Any:
    """Number blocks with counts of numbers per status."""
    return {"items": [_block(b) for b in list_blocks(db_session())]}


@bp.post("/number-blocks")
@requires("numbers.manage")
@bp.input(BlockIn, arg_name="data")
@bp.output(BlockOut, status_code=201)
@bp.doc(responses={404: "No such host", 409: "Overlaps an existing block"})
def block_add(data: dict[str, Any]) -> Any:
    """Load a contiguous block of numbers (at most 1,000,000; idempotent)."""
    session = db_session()
    host = wholesale.get_host_by_code(session, data["host"])
    block = add_number_block(
        session,
        host_id=host.id or 0,
        first=data["first"],
        last=data["last"],
        actor=current_actor(),
        now=utcnow(),
    )
    summary = next(b for b in list_blocks(session) if b.id == block.id)
    return _block(summary)


@bp.get("/numbers")
@requires("numbers.view")
@bp.input(NumberQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(NumberPageOut)
def number_search(query: dict[str, Any]) -> Any:
    """Numbers a buyer can take now, by digits (ends with / contains) and tier."""
    page = search_numbers(db_session(), now=utcnow(), **query)
    return {
        "items": page.items,
        "page": page.page,
        "per_page": page.per_page,
        "has_more": page.has_more,
    }


@bp.get("/golden-tiers")
@requires("numbers.view")
@bp.output(TierList)
def tier_list() -> Any:
    """Golden-number tiers and their surcharges."""
    return {"items": list_tiers(db_session())}


@bp.put("/golden-tiers/<code>")
@requires("numbers.manage")
@bp.input(TierIn, arg_name="data")
@bp.output(TierOut)
@bp.doc(responses={404: "No such tier"})
def tier_put(code: str, data: dict[str, Any]) -> Any:
    """Set a tier's surcharge (applies to its available numbers at once)."""
    return set_tier_surcharge(
        db_session(),
        code=code,
        surcharge_minor=data["surcharge_minor"],
        enabled=data["enabled"],
        actor=current_actor(),
        now=utcnow(),
    )


@bp.get("/sims")
@requires("numbers.view")
@bp.input(SimQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(SimPage)
def sim_list(query: dict[str, Any]) -> Any:
    """SIM inventory, filtered and paged, with counts per status."""
    session = db_session()
    items, total = list_sims(session, **query)
    return {"items": items, "total": total, "counts": count_sims_by_status(session)}


@bp.post("/sims/import")
@requires("numbers.manage")
@bp.input(SimImportIn, arg_name="data")
@bp.output(SimImportOut, status_code=201)
@bp.doc(responses={404: "No such host"})
def sim_import(data: dict[str, Any]) -> Any:
    """Import a SIM file; any bad row refuses the whole file.

    The 422 error's `details.rejects` lists every refused row (line, raw, reason).
    """
    session = db_session()
    host = wholesale.get_host_by_code(session, data["host"])
    report = import_sims(
        session,
        text=data["csv"],
        filename=data["filename"],
        host_id=host.id or 0,
        actor=current_actor(),
        now=utcnow(),
    )
    return {"rows": report.rows, "imported": report.imported}
