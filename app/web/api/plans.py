"""JSON API of what is sold (DESIGN §8, §14): retail plans and their versions, add-ons."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.core.errors import N_, DomainError
from app.web.api import bp
from app.web.api.plans_schemas import (
    AddOnIn,
    AddOnList,
    AddOnOut,
    AddOnStatusIn,
    PlanDetail,
    PlanIn,
    PlanList,
    PlanOut,
    PlanQuery,
    PublishIn,
)
from app.web.api.security import requires
from app.web.context import current_actor, db_session
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


def _plan(plan: Plan) -> dict[str, Any]:
    try:
        margin: Any = plan_margin(db_session(), plan=plan, on=utcnow().date())
    except DomainError:
        margin = None
    return {**plan.model_dump(), "margin": margin}


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
