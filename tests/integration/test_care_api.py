"""JSON API of care: customer search and view (ID masked), real-name details,
the audited reveal, plan change, transfer, port-out, SIM swap and a host's secret."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.charging.periods import open_period
from app.core.audit import Actor, AuditEntry
from app.core.clock import utcnow
from app.core.pii import PiiCipher
from app.provisioning.models import ProvisioningEvent
from app.subscribers import kyc
from app.subscribers.models import Customer, Line
from numbering.models import Sim
from tests.factories import make_api_key
from tests.unit.plans.helpers import make_plan, publish
from tests.unit.subscribers.helpers import World, make_line, make_world
from tests.unit.subscribers.test_sim_swap import stock_sim
from tests.unit.wholesale.helpers import make_host, make_rate_card
from wholesale.models import HostCarrier

CLEAR_ID = "11010519491231002X"
MASKED_ID = "1101**********002X"


@pytest.fixture
def world(app: Any, session: Session) -> World:
    world = make_world(session, code="CAPI")
    kyc.register_identity(
        session,
        customer=world.customer,
        name="张伟",
        id_type="cn_ric",
        id_number=CLEAR_ID,
        cipher=PiiCipher(app.extensions["mvno.settings"].pii_key),
        actor=Actor.system("test"),
        now=utcnow(),
    )
    session.commit()
    return world


def _auth(session: Session, role: str) -> dict[str, str]:
    _key, token = make_api_key(session, role=role)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def _line(session: Session, line: Line) -> Line:
    session.expire_all()
    found = session.get(Line, line.id)
    assert found is not None
    return found


# -- customers --------------------------------------------------------------------------


def test_search_and_view_show_lines_and_only_the_masked_id(client, session, world) -> None:
    line = make_line(session, world)
    now = utcnow()
    period = open_period(
        session, line=line, plan=world.plan, start=now - timedelta(days=1), now=now
    )
    period.voice_s_used = 90
    session.add(period)
    sim = session.get(Sim, line.sim_id)
    assert sim is not None
    headers = _auth(session, "care")
    found = client.get(f"/api/v1/customers?q={sim.iccid[-8:]}", headers=headers)
    assert found.status_code == 200
    [item] = found.get_json()["items"]
    assert item["ref"] == world.customer.ref and item["id_number_masked"] == MASKED_ID
    detail = client.get(f"/api/v1/customers/{world.customer.ref}", headers=headers)
    assert detail.status_code == 200
    body = detail.get_json()
    [row] = body["lines"]
    assert row["msisdn"] == line.msisdn and row["iccid"] == sim.iccid
    assert row["remaining"] == {
        "data_kb": world.plan.data_mb * 1024,
        "voice_s": world.plan.voice_min * 60 - 90,
        "sms": world.plan.sms,
    }
    for response in (found, detail):
        assert CLEAR_ID not in response.get_data(as_text=True)


def test_search_by_number_and_nothing_found(client, session, world) -> None:
    line = make_line(session, world)
    headers = _auth(session, "auditor")
    hit = client.get("/api/v1/customers", query_string={"q": line.msisdn}, headers=headers)
    assert [i["ref"] for i in hit.get_json()["items"]] == [world.customer.ref]
    miss = client.get("/api/v1/customers", query_string={"q": "nobody"}, headers=headers)
    assert miss.get_json()["items"] == []
    assert client.get("/api/v1/customers/C-NOPE", headers=headers).status_code == 404
    assert client.get("/api/v1/customers?limit=0", headers=headers).status_code == 422
    assert client.get("/api/v1/customers", headers=_auth(session, "finance")).status_code == 403


def test_care_records_identity_and_gets_it_back_masked(client, session, world) -> None:
    headers = _auth(session, "care")
    path = f"/api/v1/customers/{world.customer.ref}/identity"
    response = client.put(
        path,
        json={"name": "Li Na", "id_type": "passport", "id_number": "E12345678"},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["id_number_masked"] == "E******78" and "E12345678" not in json.dumps(body)
    bad = client.put(
        path,
        json={"name": "张伟", "id_type": "cn_ric", "id_number": "110105194912310022"},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "id_number"
    session.expire_all()
    assert session.get(Customer, world.customer.id).id_type == "passport"  # type: ignore[union-attr]
    assert (
        client.put(
            path,
            json={"name": "x", "id_type": "passport", "id_number": "E12345678"},
            headers=_auth(session, "auditor"),
        ).status_code
        == 403
    )


def test_an_admin_key_reveals_the_id_and_the_look_is_audited(client, session, world) -> None:
    path = f"/api/v1/customers/{world.customer.ref}/reveal-id"
    response = client.post(path, json={"reason": "court order 7"}, headers=_auth(session, "admin"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    assert response.get_json() == {
        "customer_ref": world.customer.ref,
        "id_type": "cn_ric",
        "id_number": CLEAR_ID,
    }
    [audit] = session.exec(select(AuditEntry).where(AuditEntry.action == "customer.reveal_id"))
    assert audit.actor_kind == "api_key" and audit.ip == "127.0.0.1"
    assert audit.details == {"id_number": MASKED_ID, "reason": "court order 7"}


@pytest.mark.parametrize("role", ["care", "finance", "wholesale", "auditor"])
def test_only_admin_keys_may_reveal(client, session, world, role) -> None:
    path = f"/api/v1/customers/{world.customer.ref}/reveal-id"
    response = client.post(path, json={"reason": "curious"}, headers=_auth(session, role))
    assert response.status_code == 403 and CLEAR_ID not in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_a_reveal_needs_a_reason(client, session, world, body) -> None:
    path = f"/api/v1/customers/{world.customer.ref}/reveal-id"
    response = client.post(path, json=body, headers=_auth(session, "admin"))
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "reason"


def test_a_reveal_without_an_id_on_record_is_404(client, session, world) -> None:
    from app.subscribers.services import create_customer

    create_customer(session, ref="C-NOID", now=utcnow())
    response = client.post(
        "/api/v1/customers/C-NOID/reveal-id", json={"reason": "x"}, headers=_auth(session, "admin")
    )
    assert response.status_code == 404


# -- line changes -----------------------------------------------------------------------


def test_change_plan_by_code_and_cancel_it(client, session, world) -> None:
    line = make_line(session, world)
    headers = _auth(session, "care")
    path = f"/api/v1/lines/{line.msisdn}/change-plan"
    response = client.post(path, json={"plan": "MAX60", "reason": "more data"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["next_plan"] == "MAX60"
    again = client.post(path, json={"plan": "MAX60", "reason": "more data"}, headers=headers)
    assert again.status_code == 200
    events = session.exec(select(ProvisioningEvent).where(ProvisioningEvent.line_id == line.id))
    assert [e.action for e in events] == ["change_plan"]
    current = world.plan.code
    cancel = client.post(path, json={"plan": current, "reason": "no"}, headers=headers)
    assert cancel.status_code == 200 and cancel.get_json()["next_plan"] is None


def test_change_plan_refusals(client, session, world) -> None:
    line = make_line(session, world)
    other_host = make_host(session, code="CAPIB")
    make_rate_card(session, host=other_host)
    assert other_host.id is not None
    publish(session, make_plan(session, host_id=other_host.id, code="ELSEWHERE"))
    headers = _auth(session, "care")
    path = f"/api/v1/lines/{line.msisdn}/change-plan"
    unknown = client.post(path, json={"plan": "NOSUCH", "reason": "x"}, headers=headers)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["field"] == "plan"
    foreign = client.post(path, json={"plan": "ELSEWHERE", "reason": "x"}, headers=headers)
    assert foreign.status_code == 422 and foreign.get_json()["error"]["field"] == "plan_id"
    bad = client.post(path, json={"plan": "lower case", "reason": "x"}, headers=headers)
    assert bad.status_code == 422
    assert _line(session, line).next_plan_id is None


@pytest.mark.parametrize(
    ("action", "status"), [("transfer", "transferred"), ("port-out", "ported_out")]
)
def test_transfer_and_port_out(client, session, world, action, status) -> None:
    line = make_line(session, world)
    headers = _auth(session, "care")
    path = f"/api/v1/lines/{line.msisdn}/{action}"
    response = client.post(path, json={"reason": "customer asked"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == status
    again = client.post(path, json={"reason": "customer asked"}, headers=headers)
    assert again.status_code == 200
    assert client.post(path, json={}, headers=headers).status_code == 422
    ended = make_line(session, world, status="terminated")
    refused = client.post(
        f"/api/v1/lines/{ended.msisdn}/{action}", json={"reason": "x"}, headers=headers
    )
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "line_state"


def test_swap_sim_to_an_esim_returns_its_activation_code(client, session, world) -> None:
    line = make_line(session, world)
    old = session.get(Sim, line.sim_id)
    assert old is not None and world.host.id is not None
    esim = stock_sim(session, world.host.id, kind="esim")
    session.commit()
    headers = _auth(session, "care")
    response = client.post(
        f"/api/v1/lines/{line.msisdn}/swap-sim",
        json={"iccid": esim.iccid, "reason": "lost phone", "lost": True},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["iccid"] == esim.iccid and body["sim_kind"] == "esim" and body["lpa"] == esim.lpa
    assert body["sim_status"] == "active" and body["status"] == "active"
    session.expire_all()
    assert session.get(Sim, old.id).status == "blocked"  # type: ignore[union-attr]
    [event] = session.exec(
        select(ProvisioningEvent)
        .where(ProvisioningEvent.line_id == line.id)
        .order_by(col(ProvisioningEvent.id))
    )
    assert event.action == "swap_sim" and event.payload["old_iccid"] == old.iccid


def test_swap_sim_refusals(client, session, world) -> None:
    line = make_line(session, world)
    assert world.host.id is not None
    taken = stock_sim(session, world.host.id, status="retired")
    session.commit()
    headers = _auth(session, "care")
    path = f"/api/v1/lines/{line.msisdn}/swap-sim"
    unknown = client.post(
        path, json={"iccid": "89860100000000000000", "reason": "x"}, headers=headers
    )
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "sim_not_found"
    not_in_stock = client.post(path, json={"iccid": taken.iccid, "reason": "x"}, headers=headers)
    assert not_in_stock.status_code == 409
    assert not_in_stock.get_json()["error"]["code"] == "sim_unavailable"
    malformed = client.post(path, json={"iccid": "12ab", "reason": "x"}, headers=headers)
    assert malformed.status_code == 422 and malformed.get_json()["error"]["field"] == "iccid"
    assert (
        client.post(
            path, json={"iccid": taken.iccid, "reason": "x"}, headers=_auth(session, "finance")
        ).status_code
        == 403
    )
    assert _line(session, line).sim_id != taken.id


# -- a host's provisioning secret -------------------------------------------------------

SECRET = "Abcdefghijklmnop-1234"


def test_the_secret_is_set_rotated_and_cleared_and_never_returned(client, session, world):
    headers = _auth(session, "wholesale")
    path = "/api/v1/hosts/CAPI/provisioning-secret"
    response = client.put(path, json={"secret": SECRET}, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"code": "CAPI", "secret_set": True, "secret_last4": "1234"}
    assert SECRET not in response.get_data(as_text=True)
    listing = client.get("/api/v1/hosts", headers=headers).get_data(as_text=True)
    assert SECRET not in listing
    cleared = client.put(path, json={"secret": None}, headers=headers)
    assert cleared.get_json() == {"code": "CAPI", "secret_set": False, "secret_last4": None}
    session.expire_all()
    host = session.exec(select(HostCarrier).where(HostCarrier.code == "CAPI")).one()
    assert host.provisioning_secret is None


@pytest.mark.parametrize("body", [{"secret": "short"}, {"secret": " " * 20}, {}, {"secret": 5}])
def test_a_bad_secret_is_422(client, session, world, body):
    response = client.put(
        "/api/v1/hosts/CAPI/provisioning-secret", json=body, headers=_auth(session, "admin")
    )
    assert response.status_code == 422


@pytest.mark.parametrize(("role", "status"), [("care", 403), ("finance", 403), ("admin", 200)])
def test_the_secret_needs_wholesale_manage(client, session, world, role, status):
    response = client.put(
        "/api/v1/hosts/CAPI/provisioning-secret",
        json={"secret": SECRET},
        headers=_auth(session, role),
    )
    assert response.status_code == status
    assert (
        client.put(
            "/api/v1/hosts/NOPE/provisioning-secret",
            json={"secret": SECRET},
            headers=_auth(session, "admin"),
        ).status_code
        == 404
    )
