from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from app.core.audit import AuditEntry
from app.core.errors import InvalidInput
from plans.addons import list_addons, set_addon_status, upsert_addon
from plans.errors import (
    AddOnNotFound,
    NegativeMargin,
    NoRateCard,
    PlanCodeTaken,
    PlanNotFound,
    PlanStatusConflict,
)
from plans.models import AddOn, Plan
from plans.services import (
    find_plan_by_code,
    get_plan,
    list_plan_versions,
    list_plans,
    publish_plan,
    published_plans,
    retire_plan,
    update_plan,
)
from plans.terms import PlanInput, validate_plan_input
from tests.factories import NOW
from tests.unit.plans.helpers import lite30, make_plan, publish
from tests.unit.wholesale.helpers import ACTOR, make_host, make_rate_card

LATER = NOW + timedelta(days=1)


def audits(session, action):
    return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture
def host(session):
    host = make_host(session)
    make_rate_card(session, host=host)
    return host


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "lite30"}, "code"),
        ({"code": "L"}, "code"),
        ({"code": "L" * 41}, "code"),
        ({"code": "LITE 30"}, "code"),
        ({"names": {}}, "names"),
        ({"names": {"en": "   "}}, "names"),
        ({"names": "Lite"}, "names"),
        ({"names": {"fr": "Léger"}}, "names"),
        ({"names": {"en": "x" * 41}}, "names.en"),
        ({"names": {"zh_Hans": "轻享\x07"}}, "names.zh_Hans"),
        ({"names": {"en": 30}}, "names.en"),
        ({"descriptions": {"en": "x" * 501}}, "descriptions.en"),
        ({"descriptions": {"en": "bad\x00text"}}, "descriptions.en"),
        ({"host_id": 0}, "host_id"),
        ({"price_minor": -1}, "price_minor"),
        ({"price_minor": 39.0}, "price_minor"),
        ({"price_minor": True}, "price_minor"),
        ({"price_minor": "3900"}, "price_minor"),
        ({"price_minor": 2**31}, "price_minor"),
        ({"validity_days": 0}, "validity_days"),
        ({"validity_days": -30}, "validity_days"),
        ({"validity_days": 731}, "validity_days"),
        ({"validity_days": 30.5}, "validity_days"),
        ({"data_mb": -1}, "data_mb"),
        ({"voice_min": -1}, "voice_min"),
        ({"sms": -1}, "sms"),
        ({"overage_data_per_mb_minor": -1}, "overage_data_per_mb_minor"),
        ({"overage_voice_per_min_minor": -5}, "overage_voice_per_min_minor"),
        ({"overage_sms_minor": -10}, "overage_sms_minor"),
        ({"voice_increment_s": 0}, "voice_increment_s"),
        ({"voice_increment_s": 3601}, "voice_increment_s"),
        ({"auto_renew_default": "yes"}, "auto_renew_default"),
    ],
)
def test_bad_plan_input_is_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidInput) as info:
        validate_plan_input(lite30(1, **changes))
    assert info.value.field == field


def test_validity_over_730_days_is_refused_naming_the_limit():
    with pytest.raises(InvalidInput) as info:
        validate_plan_input(lite30(1, validity_days=731))
    assert "730" in info.value.message
    assert "731" in info.value.message


@pytest.mark.parametrize(
    "changes",
    [
        {"validity_days": 1},
        {"validity_days": 730},
        {"voice_increment_s": 1},
        {"voice_increment_s": 3600},
        {"price_minor": 0, "data_mb": 0, "voice_min": 0, "sms": 0},
        {"names": {"en": "Lite"}, "descriptions": {}},
        {"names": {"zh_Hans": "轻" * 40}},
        {"descriptions": {"en": "x" * 500}},
    ],
)
def test_edge_plan_input_is_accepted(changes):
    assert validate_plan_input(lite30(1, **changes))


def test_validation_trims_texts_and_drops_empty_descriptions():
    data = validate_plan_input(
        lite30(1, code=" LITE30 ", names={"en": "  Lite "}, descriptions={"en": " ", "zh_Hans": ""})
    )
    assert (data.code, data.names, data.descriptions) == ("LITE30", {"en": "Lite"}, {})


# -- create and update ---------------------------------------------------------------


def test_create_plan_makes_a_draft_version_1_in_the_hosts_currency(session, host):
    plan = make_plan(session, host_id=host.id)
    assert (plan.code, plan.version, plan.status, plan.currency) == ("LITE30", 1, "draft", "CNY")
    assert (plan.price_minor, plan.voice_increment_s, plan.auto_renew_default) == (3900, 60, True)
    assert plan.names == {"zh_Hans": "轻享套餐", "en": "Lite"}
    [audit] = audits(session, "plan.create")
    assert audit.details["terms"]["price_minor"] == 3900


def test_a_taken_plan_code_is_refused(session, host):
    make_plan(session, host_id=host.id)
    with pytest.raises(PlanCodeTaken) as info:
        make_plan(session, host_id=host.id, price_minor=100)
    assert info.value.http_status == 409
    assert [p.price_minor for p in session.exec(select(Plan))] == [3900]


def test_a_plan_for_an_unknown_host_is_refused(session):
    with pytest.raises(InvalidInput) as info:
        make_plan(session, host_id=999_999)
    assert info.value.field == "host_id"


def test_editing_a_draft_changes_it_in_place(session, host):
    plan = make_plan(session, host_id=host.id)
    edited = update_plan(
        session, code="LITE30", data=lite30(host.id, price_minor=4200), actor=ACTOR, now=LATER
    )
    assert (edited.id, edited.version, edited.price_minor) == (plan.id, 1, 4200)
    [audit] = audits(session, "plan.update")
    assert audit.details["changes"] == {"price_minor": {"before": 3900, "after": 4200}}


def test_an_edit_that_changes_nothing_writes_nothing(session, host):
    plan = make_plan(session, host_id=host.id)
    same = update_plan(session, code="LITE30", data=lite30(host.id), actor=ACTOR, now=LATER)
    assert same is plan
    assert audits(session, "plan.update") == []


def test_editing_a_published_plan_makes_version_2_and_leaves_version_1_alone(session, host):
    v1 = publish(session, make_plan(session, host_id=host.id))
    v2 = update_plan(
        session,
        code="LITE30",
        data=lite30(host.id, price_minor=4500, data_mb=20480),
        actor=ACTOR,
        now=LATER,
    )
    assert (v2.version, v2.status, v2.price_minor, v2.data_mb) == (2, "draft", 4500, 20480)
    assert v2.id != v1.id
    session.expire_all()
    v1 = session.get(Plan, v1.id)
    assert (v1.status, v1.price_minor, v1.data_mb) == ("published", 3900, 10240)
    assert find_plan_by_code(session, "LITE30").id == v2.id
    [audit] = audits(session, "plan.new_version")
    assert audit.details["previous_version"] == 1
    assert set(audit.details["changes"]) == {"price_minor", "data_mb"}


def test_editing_a_retired_plan_makes_a_new_draft_version(session, host):
    v1 = publish(session, make_plan(session, host_id=host.id))
    retire_plan(session, plan_id=v1.id, actor=ACTOR, now=LATER)
    v2 = update_plan(session, code="LITE30", data=lite30(host.id, sms=200), actor=ACTOR, now=LATER)
    assert (v2.version, v2.status, v1.status) == (2, "draft", "retired")


def test_the_code_of_a_plan_cannot_change_in_an_update(session, host):
    make_plan(session, host_id=host.id)
    with pytest.raises(InvalidInput) as info:
        update_plan(
            session, code="LITE30", data=lite30(host.id, code="LITE31"), actor=ACTOR, now=LATER
        )
    assert info.value.field == "code"


def test_updating_an_unknown_plan_is_refused(session, host):
    with pytest.raises(PlanNotFound):
        update_plan(session, code="LITE30", data=lite30(host.id), actor=ACTOR, now=LATER)


# -- publish and retire --------------------------------------------------------------


def test_publishing_a_draft_records_the_margin(session, host):
    plan = publish(session, make_plan(session, host_id=host.id))
    assert (plan.status, plan.published_at, plan.margin_override) == ("published", NOW, False)
    [audit] = audits(session, "plan.publish")
    assert audit.details["margin_minor"] == 270
    assert audits(session, "plan.publish_override") == []


def test_publishing_a_new_version_retires_the_previous_one(session, host):
    v1 = publish(session, make_plan(session, host_id=host.id))
    v2 = update_plan(
        session, code="LITE30", data=lite30(host.id, price_minor=3800), actor=ACTOR, now=LATER
    )
    publish(session, v2, now=LATER)
    session.expire_all()
    v1, v2 = session.get(Plan, v1.id), session.get(Plan, v2.id)
    assert (v1.status, v1.retired_at) == ("retired", LATER)
    assert (v2.status, v2.published_at) == ("published", LATER)
    assert [p.id for p in published_plans(session)] == [v2.id]
    [retired] = audits(session, "plan.retire")
    assert retired.details == {"code": "LITE30", "version": 1, "superseded_by": 2}


def test_only_a_draft_can_be_published(session, host):
    plan = publish(session, make_plan(session, host_id=host.id))
    with pytest.raises(PlanStatusConflict):
        publish(session, plan)
    retire_plan(session, plan_id=plan.id, actor=ACTOR, now=LATER)
    with pytest.raises(PlanStatusConflict):
        publish(session, plan)


def test_a_negative_margin_is_refused_naming_it(session, host):
    # LITE30 costs 36.30 wholesale; at 36.29 it loses one fen a period.
    plan = make_plan(session, host_id=host.id, price_minor=3629)
    with pytest.raises(NegativeMargin) as info:
        publish(session, plan)
    assert info.value.http_status == 409
    assert "-0.01 CNY" in info.value.message
    assert session.get(Plan, plan.id).status == "draft"
    assert audits(session, "plan.publish") == []


def test_a_zero_margin_needs_no_override(session, host):
    plan = publish(session, make_plan(session, host_id=host.id, price_minor=3630))
    assert (plan.status, plan.margin_override) == ("published", False)


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_override_without_a_reason_is_refused(session, host, reason):
    plan = make_plan(session, host_id=host.id, price_minor=1000)
    with pytest.raises(InvalidInput) as info:
        publish(session, plan, override_negative_margin=True, reason=reason)
    assert info.value.field == "reason"
    assert session.get(Plan, plan.id).status == "draft"


def test_an_override_publishes_a_negative_margin_and_is_audited(session, host):
    plan = make_plan(session, host_id=host.id, price_minor=1000)
    publish(session, plan, override_negative_margin=True, reason="Launch promotion, one month")
    assert (plan.status, plan.margin_override) == ("published", True)
    [audit] = audits(session, "plan.publish_override")
    assert audit.details["margin_minor"] == 1000 - 3630
    assert audit.details["reason"] == "Launch promotion, one month"
    assert audit.target_id == str(plan.id)


def test_publishing_without_a_rate_card_in_force_is_refused(session):
    host = make_host(session)
    # The card starts tomorrow in the host's time zone.
    make_rate_card(session, host=host, effective_from=date(2026, 11, 2))
    plan = make_plan(session, host_id=host.id)
    with pytest.raises(NoRateCard) as info:
        publish(session, plan)
    assert "HOSTA" in info.value.message
    assert "2026-11-01" in info.value.message
    assert plan.status == "draft"


def test_publishing_uses_the_card_in_force_on_the_hosts_date(session):
    host = make_host(session)
    make_rate_card(session, host=host, effective_from=date(2026, 2, 1))
    plan = make_plan(session, host_id=host.id)
    # 16:30 UTC on 31 January is already 1 February in Shanghai.
    now = datetime.fromisoformat("2026-01-31T16:30:00+00:00")
    assert publish(session, plan, now=now).status == "published"


def test_retiring_a_published_plan(session, host):
    plan = publish(session, make_plan(session, host_id=host.id))
    retired = retire_plan(session, plan_id=plan.id, actor=ACTOR, now=LATER)
    assert (retired.status, retired.retired_at) == ("retired", LATER)
    assert published_plans(session) == []
    again = retire_plan(session, plan_id=plan.id, actor=ACTOR, now=LATER + timedelta(1))
    assert again.retired_at == LATER
    assert len(audits(session, "plan.retire")) == 1


def test_a_draft_cannot_be_retired(session, host):
    plan = make_plan(session, host_id=host.id)
    with pytest.raises(PlanStatusConflict):
        retire_plan(session, plan_id=plan.id, actor=ACTOR, now=LATER)


def test_publish_and_retire_of_an_unknown_plan_are_refused(session):
    with pytest.raises(PlanNotFound):
        publish_plan(session, plan_id=999_999, actor=ACTOR, now=NOW)
    with pytest.raises(PlanNotFound):
        retire_plan(session, plan_id=999_999, actor=ACTOR, now=NOW)


# -- readers -------------------------------------------------------------------------


def test_plan_readers(session, host):
    v1 = publish(session, make_plan(session, host_id=host.id))
    v2 = update_plan(session, code="LITE30", data=lite30(host.id, sms=150), actor=ACTOR, now=LATER)
    basic = make_plan(session, host_id=host.id, code="BASIC10", price_minor=1000)
    assert get_plan(session, v1.id) is v1
    with pytest.raises(PlanNotFound):
        get_plan(session, 999_999)
    assert find_plan_by_code(session, "LITE30") is v2
    assert find_plan_by_code(session, "NOPE") is None
    assert list_plans(session) == [basic, v2]
    assert list_plans(session, status="draft") == [basic, v2]
    assert list_plans(session, status="published") == []
    assert list_plan_versions(session, code="LITE30") == [v2, v1]
    assert published_plans(session) == [v1]
    with pytest.raises(InvalidInput):
        list_plans(session, status="deleted")


# -- add-ons -------------------------------------------------------------------------


def test_upsert_addon_creates_updates_and_skips_unchanged(session):
    names = {"en": "1 GB pack"}
    addon = upsert_addon(
        session, code="DATA1G", names=names, price_minor=1000, data_mb=1024, actor=ACTOR, now=NOW
    )
    assert (addon.status, addon.currency, addon.price_minor) == ("draft", "CNY", 1000)
    upsert_addon(
        session, code="DATA1G", names=names, price_minor=1000, data_mb=1024, actor=ACTOR, now=NOW
    )
    assert audits(session, "addon.update") == []
    updated = upsert_addon(
        session,
        code="DATA1G",
        names=names,
        price_minor=900,
        data_mb=1024,
        status="published",
        actor=ACTOR,
        now=LATER,
    )
    assert updated.id == addon.id
    [audit] = audits(session, "addon.update")
    assert audit.details["changes"] == {
        "price_minor": {"before": 1000, "after": 900},
        "status": {"before": "draft", "after": "published"},
    }
    assert len(session.exec(select(AddOn)).all()) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "data1g"}, "code"),
        ({"names": {}}, "names"),
        ({"price_minor": -1}, "price_minor"),
        ({"data_mb": 0}, "data_mb"),
        ({"status": "deleted"}, "status"),
    ],
)
def test_bad_addon_input_is_refused(session, changes, field):
    kwargs = {"code": "DATA1G", "names": {"en": "1 GB"}, "price_minor": 1000, "data_mb": 1024}
    with pytest.raises(InvalidInput) as info:
        upsert_addon(session, **{**kwargs, **changes}, actor=ACTOR, now=NOW)
    assert info.value.field == field


def test_addon_status_and_listing(session):
    for code in ("DATA5G", "DATA1G"):
        upsert_addon(
            session, code=code, names={"en": code}, price_minor=1, data_mb=1, actor=ACTOR, now=NOW
        )
    addon = set_addon_status(session, code="DATA1G", status="published", actor=ACTOR, now=NOW)
    set_addon_status(session, code="DATA1G", status="published", actor=ACTOR, now=NOW)
    assert addon.status == "published"
    assert len(audits(session, "addon.status")) == 1
    assert [a.code for a in list_addons(session)] == ["DATA1G", "DATA5G"]
    assert [a.code for a in list_addons(session, status="published")] == ["DATA1G"]
    with pytest.raises(AddOnNotFound):
        set_addon_status(session, code="NOPE", status="published", actor=ACTOR, now=NOW)
    with pytest.raises(InvalidInput):
        set_addon_status(session, code="DATA1G", status="gone", actor=ACTOR, now=NOW)


def test_plan_input_dumps_to_the_keyword_arguments_of_a_plan():
    data = lite30(7)
    assert PlanInput(**data.model_dump()) == data
    assert Plan(**data.model_dump(), created_at=NOW).price_minor == 3900
