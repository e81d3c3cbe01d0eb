"""JSON API of the provisioning outbox (DESIGN §10, §14).

`provisioning.view` lists outbox events (dead letters first);
`provisioning.manage` queues a dead one again.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from app.core.clock import utcnow
from app.provisioning import services as outbox
from app.provisioning.models import ProvisioningEvent
from app.subscribers.models import Line
from app.web.api import bp
from app.web.api.common import page_args, page_out
from app.web.api.provisioning_schemas import EventOut, EventPage, EventQuery
from app.web.api.security import requires
from app.web.context import current_actor, db_session


def _events(events: list[ProvisioningEvent]) -> list[dict[str, Any]]:
    session = db_session()
    msisdns: dict[int, str] = {}
    for line_id in sorted({e.line_id for e in events}):
        line = session.get(Line, line_id)
        msisdns[line_id] = line.msisdn if line else ""
    return [{**e.model_dump(), "msisdn": msisdns[e.line_id]} for e in events]


@bp.get("/provisioning-events")
@requires("provisioning.view")
@bp.input(EventQuery, location="query", arg_name="query", unknown=RAISE)
@bp.output(EventPage)
def provisioning_event_list(query: dict[str, Any]) -> Any:
    """Outbox events: dead letters first, then waiting, then delivered; newest first in each."""
    events, total = outbox.list_events(db_session(), status=query.get("status"), **page_args(query))
    return page_out(_events(events), total, query)


@bp.post("/provisioning-events/<int:event_id>/retry")
@requires("provisioning.manage")
@bp.output(EventOut)
@bp.doc(responses={404: "No such event", 409: "Only a dead event can be retried"})
def provisioning_event_retry(event_id: int) -> Any:
    """Queue a dead event again, with a fresh count of attempts."""
    event = outbox.retry_dead_event(
        db_session(), event_id=event_id, actor=current_actor(), now=utcnow()
    )
    return _events([event])[0]
