"""Console care: search, the customer page's lines and identity, plan change,
transfer and port-out with a confirmation, SIM swap, the audited ID reveal, and a host's
provisioning secret — with the roles that may and may not do each."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
from tests.conftest import csrf_token
from tests.factories import login_staff, make_staff
from tests.unit.subscribers.helpers import World, make_line, make_world
from tests.unit.subscribers.test_sim_swap import stock_sim
from wholesale.models import HostCarrier

CLEAR_ID = "11010519491231002X"
MASKED_ID = "1101**********002X"


@dataclass
class Care:
    world: World
    customer: Customer
    line: Line
    sim: Sim


@pytest.fixture
def care(app: Any, session: Session) -> Care:
    world = make_world(session, code="CARE")
    customer = world.customer
    kyc.register_identity(
        session,
        customer=customer,
        name="张伟",
        id_type="cn_ric",
        id_number=CLEAR_ID,
        cipher=PiiCipher(app.extensions["mvno.settings"].pii_key),
        actor=Actor.system("test"),
        now=utcnow(),
    )
    customer.email = "zhang.wei@example.com"
    session.add(customer)
    line = make_line(session, world)
    now = utcnow()
    period = open_period(
        session, line=line, plan=world.plan, start=now - timedelta(days=3), now=now
    )
    period.data_kb_used = 1024 * 100
    period.sms_used = 7
    session.add(period)
    sim = session.get(Sim, line.sim_id)
    assert sim is not None
    session.commit()
    return Care(world, customer, line, sim)


def _login(client: Any, session: Session, role: str) -> None:
    make_staff(session, role=role, email=f"{role}@example.com")
    session.commit()
    login_staff(client, f"{role}@example.com")


def _page(care: Care) -> str:
    return f"/console/customers/{care.customer.ref}"


def _post(client: Any, path: str, data: dict[str, Any], *, page: str) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def _line(session: Session, line: Line) -> Line:
    session.expire_all()
    found = session.get(Line, line.id)
    assert found is not None
    return found


def _audits(session: Session, action: str) -> list[AuditEntry]:
    statement = select(AuditEntry).where(AuditEntry.action == action)
    return list(session.exec(statement.order_by(col(AuditEntry.id))))


# -- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["张", "zhang.wei@", "c-care", "{msisdn_part}", "{msisdn}", "{iccid_part}", "{iccid}"],
)
def test_search_finds_the_customer_by_each_key(client, session, care, query) -> None:
    _login(client, session, "care")
    msisdn = care.line.msisdn
    q = query.format(
        msisdn=msisdn,
        msisdn_part=msisdn[-6:],
        iccid=care.sim.iccid,
        iccid_part=care.sim.iccid[-7:],
    )
    html = client.get("/console/customers", query_string={"q": q}).get_data(as_text=True)
    assert f'data-customer="{care.customer.ref}"' in html
    assert MASKED_ID in html and CLEAR_ID not in html
    assert f'data-line="{msisdn}"' in html and 'data-status="active"' in html


@pytest.mark.parametrize("query", ["nobody", "99999999999", "%", "_", "c-zzz"])
def test_search_without_a_match_lists_nobody(client, session, care, query) -> None:
    _login(client, session, "care")
    html = client.get("/console/customers", query_string={"q": query}).get_data(as_text=True)
    assert f'data-customer="{care.customer.ref}"' not in html


def test_an_iccid_search_does_not_find_another_customers_sim(client, session, care) -> None:
    spare = stock_sim(session, care.world.host.id or 0)
    session.commit()
    _login(client, session, "care")
    html = client.get("/console/customers", query_string={"q": spare.iccid}).get_data(as_text=True)
    assert "data-customer=" not in html


# -- the customer page ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["care", "admin", "finance", "auditor"])
def test_the_customer_page_shows_the_id_masked_for_every_role(client, session, care, role):
    _login(client, session, role)
    html = client.get(_page(care)).get_data(as_text=True)
    assert "张伟" in html and "Chinese resident ID card" in html
    assert MASKED_ID in html and CLEAR_ID not in html
    assert ("data-reveal" in html) == (role == "admin")
    assert ("data-identity-form" in html) == (role in ("admin", "care"))


def test_the_lines_table_shows_sim_period_and_remaining_allowances(client, session, care):
    _login(client, session, "care")
    html = client.get(_page(care)).get_data(as_text=True)
    row = html[html.index(f'<tr data-line="{care.line.msisdn}"') :]
    row = row[: row.index("</tr>")]
    plan = care.world.plan
    assert care.sim.iccid in row
    assert f'data-left="data_kb" data-value="{plan.data_mb * 1024 - 1024 * 100}"' in row
    assert f'data-left="sms" data-value="{plan.sms - 7}"' in row
    assert f"SMS: {plan.sms - 7} of {plan.sms} left" in row
    # Worded like the store's meters: 10,240 MB less the 100 used, in GB; whole minutes.
    assert plan.data_mb == 10240 and plan.voice_min == 200
    assert "Data: 9.90 GB of 10.00 GB left" in row
    assert "Voice: 200 min of 200 min left" in row
    assert "No period yet." not in row


def test_a_line_without_a_period_says_so(client, session, care):
    other = make_line(session, care.world, status="pending")
    session.commit()
    _login(client, session, "care")
    html = client.get(_page(care)).get_data(as_text=True)
    row = html[html.index(f'<tr data-line="{other.msisdn}"') :]
    assert "No period yet." in row[: row.index("</tr>")]


# -- plan change ------------------------------------------------------------------------


def test_care_changes_the_plan_at_next_renewal_and_can_cancel_it(client, session, care):
    _login(client, session, "care")
    page = _page(care)
    path = f"/console/lines/{care.line.msisdn}/change-plan"
    other = care.world.other_plan
    response = _post(client, path, {"plan_id": other.id, "reason": "wants more data"}, page=page)
    assert response.status_code == 302
    assert _line(session, care.line).next_plan_id == other.id
    html = client.get(page).get_data(as_text=True)
    assert f'data-next-plan="{other.code}"' in html
    [event] = session.exec(
        select(ProvisioningEvent).where(ProvisioningEvent.line_id == care.line.id)
    ).all()
    assert event.action == "change_plan"
    back = {"plan_id": care.world.plan.id, "reason": "changed mind"}
    assert _post(client, path, back, page=page).status_code == 302
    assert _line(session, care.line).next_plan_id is None
    assert "data-next-plan" not in client.get(page).get_data(as_text=True)


@pytest.mark.parametrize(
    "data",
    [{"plan_id": "999999", "reason": "x"}, {"plan_id": "abc", "reason": "x"}, {"reason": "x"}],
)
def test_a_bad_plan_choice_is_flashed_and_changes_nothing(client, session, care, data):
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/change-plan"
    response = _post(client, path, data, page=_page(care))
    assert response.status_code == 302
    html = client.get(_page(care)).get_data(as_text=True)
    assert "flash-error" in html
    assert _line(session, care.line).next_plan_id is None


def test_a_plan_change_needs_a_reason(client, session, care):
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/change-plan"
    data = {"plan_id": care.world.other_plan.id, "reason": ""}
    assert _post(client, path, data, page=_page(care)).status_code == 302
    assert _line(session, care.line).next_plan_id is None


# -- transfer and port-out --------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"), [("transfer", "transferred"), ("port-out", "ported_out")]
)
def test_ending_a_line_asks_for_confirmation_first(client, session, care, action, status):
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/{action}"
    asked = _post(client, path, {"reason": "moving abroad"}, page=_page(care))
    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert f'data-confirm="{action}"' in html and "moving abroad" in html
    assert _line(session, care.line).status == "active"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert token
    done = client.post(
        path, data={"csrf_token": token.group(1), "reason": "moving abroad", "confirm": "yes"}
    )
    assert done.status_code == 302
    assert _line(session, care.line).status == status
    [audit] = _audits(session, f"line.{action.replace('-', '_')}")
    assert audit.details["reason"] == "moving abroad"


def test_port_out_of_a_pending_line_is_refused(client, session, care):
    pending = make_line(session, care.world, status="pending")
    session.commit()
    _login(client, session, "care")
    path = f"/console/lines/{pending.msisdn}/port-out"
    data = {"reason": "x", "confirm": "yes"}
    assert _post(client, path, data, page=_page(care)).status_code == 302
    assert _line(session, pending).status == "pending"
    assert "cannot be ported out" in client.get(_page(care)).get_data(as_text=True)


# -- SIM swap ---------------------------------------------------------------------------


def test_care_swaps_a_lost_sim_for_a_physical_one(client, session, care):
    new = stock_sim(session, care.world.host.id or 0)
    session.commit()
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/swap-sim"
    data = {"iccid": new.iccid, "reason": "phone stolen", "lost": "y"}
    response = _post(client, path, data, page=_page(care))
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    html = response.get_data(as_text=True)
    assert new.iccid in html and care.sim.iccid in html and "data-lpa" not in html
    assert _line(session, care.line).sim_id == new.id
    session.expire_all()
    assert session.get(Sim, care.sim.id).status == "blocked"  # type: ignore[union-attr]


def test_an_esim_swap_shows_the_new_activation_code_and_its_qr(client, session, care):
    esim = stock_sim(session, care.world.host.id or 0, kind="esim")
    session.commit()
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/swap-sim"
    response = _post(client, path, {"iccid": esim.iccid, "reason": "wants eSIM"}, page=_page(care))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"<code data-lpa>{esim.lpa}</code>" in html
    assert "<svg" in html
    session.expire_all()
    assert session.get(Sim, care.sim.id).status == "retired"  # type: ignore[union-attr]


@pytest.mark.parametrize("iccid", ["89860199999999999999", "", "abc"])
def test_a_swap_to_an_unknown_sim_is_flashed_and_changes_nothing(client, session, care, iccid):
    _login(client, session, "care")
    path = f"/console/lines/{care.line.msisdn}/swap-sim"
    response = _post(client, path, {"iccid": iccid, "reason": "x"}, page=_page(care))
    assert response.status_code == 302
    assert "flash-error" in client.get(_page(care)).get_data(as_text=True)
    assert _line(session, care.line).sim_id == care.sim.id


def test_auditors_and_finance_cannot_act_on_lines(client, session, care):
    new = stock_sim(session, care.world.host.id or 0)
    session.commit()
    for role in ("auditor", "finance"):
        _login(client, session, role)
        page = _page(care)
        token = csrf_token(client, page)
        base = f"/console/lines/{care.line.msisdn}"
        for path, data in [
            (f"{base}/swap-sim", {"iccid": new.iccid, "reason": "x"}),
            (f"{base}/change-plan", {"plan_id": care.world.other_plan.id, "reason": "x"}),
            (f"{base}/transfer", {"reason": "x", "confirm": "yes"}),
        ]:
            response = client.post(path, data={"csrf_token": token, **data})
            assert response.status_code == 403, (role, path)
        client.post("/console/logout", data={"csrf_token": token})
    line = _line(session, care.line)
    assert line.sim_id == care.sim.id and line.status == "active" and line.next_plan_id is None


# -- real-name details and the reveal ---------------------------------------------------


def test_an_admin_reveals_the_id_once_with_a_reason(client, session, care):
    _login(client, session, "admin")
    path = f"/console/customers/{care.customer.ref}/reveal-id"
    response = _post(client, path, {"reason": "police request 42"}, page=_page(care))
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    assert CLEAR_ID in response.get_data(as_text=True)
    for cookie in response.headers.getlist("Set-Cookie"):
        assert CLEAR_ID not in cookie
    [audit] = _audits(session, "customer.reveal_id")
    assert audit.details["reason"] == "police request 42"
    assert audit.actor_label == "admin@example.com" and audit.ip == "127.0.0.1"
    assert CLEAR_ID not in client.get(_page(care)).get_data(as_text=True)


def test_a_reveal_without_a_reason_shows_nothing(client, session, care):
    _login(client, session, "admin")
    path = f"/console/customers/{care.customer.ref}/reveal-id"
    response = _post(client, path, {"reason": ""}, page=_page(care))
    assert response.status_code == 302
    assert CLEAR_ID not in client.get(_page(care)).get_data(as_text=True)
    assert _audits(session, "customer.reveal_id") == []


@pytest.mark.parametrize("role", ["care", "finance", "auditor"])
def test_only_admins_may_reveal(client, session, care, role):
    _login(client, session, role)
    path = f"/console/customers/{care.customer.ref}/reveal-id"
    assert _post(client, path, {"reason": "curious"}, page=_page(care)).status_code == 403
    assert _audits(session, "customer.reveal_id") == []


def test_care_records_real_name_details(client, session, care):
    _login(client, session, "care")
    path = f"/console/customers/{care.customer.ref}/identity"
    data = {
        "identity-name": "Li Na",
        "identity-id_type": "passport",
        "identity-id_number": "e1234 5678",
    }
    assert _post(client, path, data, page=_page(care)).status_code == 302
    session.expire_all()
    customer = session.get(Customer, care.customer.id)
    assert customer is not None
    assert (customer.name, customer.id_type, customer.id_number_masked) == (
        "Li Na",
        "passport",
        "E******78",
    )
    html = client.get(_page(care)).get_data(as_text=True)
    assert "E******78" in html and "E12345678" not in html


@pytest.mark.parametrize(
    "data",
    [
        {
            "identity-name": "张伟",
            "identity-id_type": "cn_ric",
            "identity-id_number": "110105194912310022",
        },
        {"identity-name": "", "identity-id_type": "cn_ric", "identity-id_number": CLEAR_ID},
        {"identity-name": "张伟", "identity-id_type": "licence", "identity-id_number": CLEAR_ID},
    ],
)
def test_bad_real_name_details_are_flashed_and_change_nothing(client, session, care, data):
    _login(client, session, "care")
    path = f"/console/customers/{care.customer.ref}/identity"
    before = care.customer.id_number_enc
    assert _post(client, path, data, page=_page(care)).status_code == 302
    assert "flash-error" in client.get(_page(care)).get_data(as_text=True)
    session.expire_all()
    assert session.get(Customer, care.customer.id).id_number_enc == before  # type: ignore[union-attr]


# -- a host's provisioning secret -------------------------------------------------------

SECRET = "s3cret-for-the-host-Z9q7"


def _host(session: Session, code: str = "CARE") -> HostCarrier:
    session.expire_all()
    return session.exec(select(HostCarrier).where(HostCarrier.code == code)).one()


def test_wholesale_sets_rotates_and_clears_the_secret_never_seeing_it_again(client, session, care):
    _login(client, session, "wholesale")
    page = "/console/hosts/CARE"
    assert 'data-secret="unset"' in client.get(page).get_data(as_text=True)
    path = "/console/hosts/CARE/provisioning-secret"
    assert _post(client, path, {"secret": SECRET}, page=page).status_code == 302
    assert _host(session).provisioning_secret == SECRET
    html = client.get(page).get_data(as_text=True)
    assert 'data-secret="set"' in html and SECRET[-4:] in html and SECRET not in html
    rotated = SECRET[::-1]
    assert _post(client, path, {"secret": rotated}, page=page).status_code == 302
    assert _host(session).provisioning_secret == rotated
    assert _post(client, path, {"clear": "y"}, page=page).status_code == 302
    assert _host(session).provisioning_secret is None
    audits = _audits(session, "host.provisioning_secret")
    assert [a.details for a in audits] == [{"set": True}, {"set": True}, {"set": False}]
    assert all(SECRET not in str(a.details) for a in audits)


@pytest.mark.parametrize("secret", ["short", "", "   "])
def test_a_bad_secret_is_flashed_and_keeps_the_old_one(client, session, care, secret):
    _login(client, session, "wholesale")
    page = "/console/hosts/CARE"
    path = "/console/hosts/CARE/provisioning-secret"
    _post(client, path, {"secret": SECRET}, page=page)
    assert _post(client, path, {"secret": secret}, page=page).status_code == 302
    assert "flash-error" in client.get(page).get_data(as_text=True)
    assert _host(session).provisioning_secret == SECRET


@pytest.mark.parametrize("role", ["care", "finance", "auditor"])
def test_only_wholesale_and_admins_set_the_secret(client, session, care, role):
    _login(client, session, role)
    token = csrf_token(client, "/console/")
    response = client.post(
        "/console/hosts/CARE/provisioning-secret", data={"csrf_token": token, "secret": SECRET}
    )
    assert response.status_code == 403
    assert _host(session).provisioning_secret is None


def test_the_customer_page_renders_in_chinese_with_the_id_masked(zh_client, session, care):
    make_staff(session, role="care", email="zh-care@example.com")
    session.commit()
    login_staff(zh_client, "zh-care@example.com")
    response = zh_client.get(_page(care))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert MASKED_ID in html and CLEAR_ID not in html
    assert f'data-care-actions="{care.line.msisdn}"' in html
