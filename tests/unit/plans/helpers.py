"""Plans for tests, through the real services: LITE30 of examples/catalog.toml."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlmodel import Session

from plans.models import Plan
from plans.services import create_plan, publish_plan
from plans.terms import PlanInput
from tests.factories import NOW
from tests.unit.wholesale.helpers import ACTOR


def lite30(host_id: int, /, **changes: Any) -> PlanInput:
    base = PlanInput(
        code="LITE30",
        names={"zh_Hans": "轻享套餐", "en": "Lite"},
        descriptions={"en": "10 GB, 200 minutes and 100 SMS a month"},
        host_id=host_id,
        price_minor=3900,
        validity_days=30,
        data_mb=10240,
        voice_min=200,
        sms=100,
        overage_data_per_mb_minor=5,
        overage_voice_per_min_minor=15,
        overage_sms_minor=10,
    )
    return dataclasses.replace(base, **changes)


def make_plan(session: Session, *, host_id: int, now: datetime = NOW, **changes: Any) -> Plan:
    return create_plan(session, data=lite30(host_id, **changes), actor=ACTOR, now=now)


def publish(session: Session, plan: Plan, *, now: datetime = NOW, **kwargs: Any) -> Plan:
    assert plan.id is not None
    return publish_plan(session, plan_id=plan.id, actor=ACTOR, now=now, **kwargs)
