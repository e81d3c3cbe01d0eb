"""JSON API of the supply side: hosts and rate cards, numbers, SIMs, plans."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.web.api import bp
from app.web.api.security import requires
from app.web.api.supply_schemas import (
    AddOnIn,
    AddOnList,
    AddOnOut,
    AddOnStatusIn,
    BlockIn,
    BlockList,
    BlockOut,
    HostIn,
    HostList,
    HostOut,
    NumberPageOut,
    NumberQuery,
    PlanDetail,
    PlanIn,
    PlanList,
    PlanOut,
    PlanQuery,
    PublishIn,
    RateCardIn,
    RateCardList,
    RateCardOut,
    SimImportIn,
    SimImportOut,
    SimPage,
    SimQuery,
    TierIn,
    TierList,
    TierOut,
)
from app.web.context import current_actor, db_session
from numbering.blocks import add_number_block, list_blocks
from numbering.search import search_numbers
from numbering.sim_import import import_sims
from numbering.sims import count_sims_by_status, list_sims
from numbering.tiers import list_tiers, set_tier_surcharge
from plans.addons import list_addons, set_addon_status, upsert_addon
from plans.errors import PlanNotFound
from plans.models import Plan
from plans.pricing import plan_margin
from plans.services import (
    create_plan,
    find_plan_by_code,
    list_plan_versions,
    list_plans,
    publish_plan,
    retire_plan,
    update_plan,
)
from plans.terms import PlanInput
from wholesale import services as wholesale
from wholesale.models import SERVICES, RateCard


def _card(card: RateCard | None) -> dict[str, Any] | None:
    if card is None:
        return None
    return {
        "id": card.id,
        "effective_from": card.effective_from,
        "prices_micro": {s: card.price(s) for s in SERVICES},
        "retail_micro": {s: card.retail_price(s) for s in SERVICES},
        "non_compliant_services": card.non_compliant_services,
    }


def _host(host: Any) -> dict[str, Any]:
    card = wholesale.rate_card_on(db_session(), host_id=host.id, on=utcnow().date())
    return {**host.model_dump(), "current_rate_card": _card(card)}


def _plan(plan: Plan) -> dict[str, Any]:
    try:
        margin: Any = plan_margin(db_session(), plan=plan, on=utcnow().date())
    except DomainError:
        margin = None
    return {**plan.model_dump(), "margin": margin}


# -- hosts ----------------------------------------------------------------------------------


@bp.get("/hosts")
@requires("wholesale.view")
@bp.output(HostList)
def host_list() -> Any:
    """Host carriers with the rate card in force today and its compliance."""
    return {"items": [_host(h) for h in wholesale.list_hosts(db_session())]}


@bp.put("/hosts/<code>")
@requires("wholesale.manage")
@bp.input(HostIn, arg_name="data")
@bp.output(HostOut)
def host_put(code: str, data: dict[str, Any]) -> Any:
    """Create or update the host carrier CODE."""
    host = wholesale.upsert_host(
        db_session(), code=code, actor=current_actor(), now=utcnow(), **data
    )
    return _host(host)


@bp.get("/hosts/<code>/rate-cards")
@requires("wholesale.view")
@bp.output(RateCardList)
@bp.doc(responses={404: "No such host"})
def rate_card_list(code: str) -> Any:
    """The host's rate cards, newest first, with compliance flags."""
    host = wholesale.get_host_by_code(db_session(), code)
    return {
        "items": [_card(c) for c in wholesale.list_rate_cards(db_session(), host_id=host.id or 0)]
    }


@bp.post("/hosts/<code>/rate-cards")
@requires("wholesale.manage")
@bp.input(RateCardIn, arg_name="data")
@bp.output(RateCardOut, status_code=201)
@bp.doc(responses={404: "No such host", 409: "A different card exists for that date"})
def rate_card_add(code: str, data: dict[str, Any]) -> Any:
    """Add a rate card (idempotent for identical prices on the same date)."""
    host = wholesale.get_host_by_code(db_session(), code)
    card = wholesale.add_rate_card(
        db_session(),
        host_id=host.id or 0,
        effective_from=data["effective_from"],
        prices_micro=data["prices_micro"],
        retail_micro=data["retail_micro"],
        actor=current_actor(),
        now=utcnow(),
    )
    return _card(card)


# -- numbers --------------------------------------------------------------------------------


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


# -- SIMs -----------------------------------------------------------------------------------


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


# -- plans ----------------------------------------------------------------------------------


def _plan_input(code: str, data: dict[str, Any]) -> PlanInput:
    host = wholesale.get_host_by_code(db_session(), data["host"])
    fields = {k: v for k, v in data.items() if k != "host"}
    return PlanInput(code=code, host_id=host.id or 0, **fields)


def _latest(code: str) -> Plan:
    plan = find_plan_by_code(db_session(), code)
    if plan is None:
        raise PlanNotFound(N_("No plan %(code)s."), code=code)
    return plan


@bp.get("/plans")
@requires("plans.view")
@bp.input(PlanQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(PlanList)
def plan_list(query: dict[str, Any]) -> Any:
    """The latest version of every plan, with its margin."""
    return {"items": [_plan(p) for p in list_plans(db_session(), status=query.get("status"))]}


@bp.get("/plans/<code>")
@requires("plans.view")
@bp.output(PlanDetail)
@bp.doc(responses={404: "No such plan"})
def plan_get(code: str) -> Any:
    """A plan's latest version, its margin and every version."""
    plan = _latest(code)
    versions = [_plan(v) for v in list_plan_versions(db_session(), code=code)]
    return {**_plan(plan), "versions": versions}


@bp.put("/plans/<code>")
@requires("plans.manage")
@bp.input(PlanIn, arg_name="data")
@bp.output(PlanOut)
@bp.doc(responses={404: "No such host"})
def plan_put(code: str, data: dict[str, Any]) -> Any:
    """Create a draft plan, or change one: a published plan gets a new draft version."""
    session = db_session()
    plan_data = _plan_input(code, data)
    if find_plan_by_code(session, code) is None:
        plan = create_plan(session, data=plan_data, actor=current_actor(), now=utcnow())
    else:
        plan = update_plan(session, code=code, data=plan_data, actor=current_actor(), now=utcnow())
    return _plan(plan)


@bp.post("/plans/versions/<int:plan_id>/publish")
@requires("plans.manage")
@bp.input(PublishIn, arg_name="data")
@bp.output(PlanOut)
@bp.doc(responses={409: "Negative margin without override, or not a draft"})
def plan_publish(plan_id: int, data: dict[str, Any]) -> Any:
    """Put a draft version on sale (retires the version sold until now)."""
    plan = publish_plan(db_session(), plan_id=plan_id, actor=current_actor(), now=utcnow(), **data)
    return _plan(plan)


@bp.post("/plans/versions/<int:plan_id>/retire")
@requires("plans.manage")
@bp.output(PlanOut)
@bp.doc(responses={409: "Not published"})
def plan_retire(plan_id: int) -> Any:
    """Stop selling a version; its subscribers keep its terms."""
    return _plan(retire_plan(db_session(), plan_id=plan_id, actor=current_actor(), now=utcnow()))


# -- add-ons --------------------------------------------------------------------------------


@bp.get("/addons")
@requires("plans.view")
@bp.output(AddOnList)
def addon_list() -> Any:
    """Add-ons (data packs) and their status."""
    return {"items": list_addons(db_session())}


@bp.put("/addons/<code>")
@requires("plans.manage")
@bp.input(AddOnIn, arg_name="data")
@bp.output(AddOnOut)
def addon_put(code: str, data: dict[str, Any]) -> Any:
    """Create an add-on as a draft, or change one (its status is kept)."""
    session = db_session()
    current = {a.code: a for a in list_addons(session)}.get(code)
    return upsert_addon(
        session,
        code=code,
        names=data["names"],
        price_minor=data["price_minor"],
        data_mb=data["data_mb"],
        status=current.status if current else "draft",
        actor=current_actor(),
        now=utcnow(),
    )


@bp.post("/addons/<code>/status")
@requires("plans.manage")
@bp.input(AddOnStatusIn, arg_name="data")
@bp.output(AddOnOut)
@bp.doc(responses={404: "No such add-on"})
def addon_set_status(code: str, data: dict[str, Any]) -> Any:
    """Put an add-on on sale, withdraw it, or return it to draft."""
    return set_addon_status(
        db_session(), code=code, status=data["status"], actor=current_actor(), now=utcnow()
    )
