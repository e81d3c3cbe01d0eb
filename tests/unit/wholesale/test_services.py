from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from app.core.audit import AuditEntry
from app.core.errors import InvalidInput
from tests.factories import NOW
from tests.unit.wholesale.helpers import (
    ACTOR,
    PRICES_MICRO,
    RETAIL_MICRO,
    make_host,
    make_rate_card,
)
from wholesale import services as wholesale
from wholesale.errors import HostNotFound, RateCardConflict
from wholesale.models import HostCarrier, RateCard


def audits(session, action):
    return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


# -- hosts ---------------------------------------------------------------------------


def test_upsert_host_creates_a_host_with_the_defaults_and_audits(session):
    host = make_host(session, code="HOSTA", name="Host Carrier A")
    assert (host.code, host.name, host.currency, host.timezone) == (
        "HOSTA",
        "Host Carrier A",
        "CNY",
        "Asia/Shanghai",
    )
    assert (host.provisioning, host.provisioning_url, host.created_at) == ("log", None, NOW)
    [audit] = audits(session, "host.create")
    assert audit.target_id == str(host.id)
    assert audit.details["code"] == "HOSTA"


def test_upsert_host_updates_only_changed_fields_and_audits_before_and_after(session):
    host = make_host(session, code="HOSTA", name="Old name")
    later = NOW + timedelta(days=1)
    same = make_host(
        session,
        code="HOSTA",
        name="New name",
        provisioning="http",
        provisioning_url="https://host.example/provisioning",
        now=later,
    )
    assert same.id == host.id
    assert session.exec(select(HostCarrier)).all() == [host]
    [audit] = audits(session, "host.update")
    assert audit.details["changes"] == {
        "name": {"before": "Old name", "after": "New name"},
        "provisioning": {"before": "log", "after": "http"},
        "provisioning_url": {"before": None, "after": "https://host.example/provisioning"},
    }
    assert host.created_at == NOW


def test_upsert_host_with_the_same_fields_writes_nothing(session):
    make_host(session, code="HOSTA", name="Host A")
    make_host(session, code="HOSTA", name="Host A")
    assert audits(session, "host.update") == []
    assert len(audits(session, "host.create")) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"code": "hosta"}, "code"),
        ({"code": "H"}, "code"),
        ({"code": "H" * 21}, "code"),
        ({"code": "HOST A"}, "code"),
        ({"code": "HOST.A"}, "code"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Host\x00A"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "cny"}, "currency"),
        ({"currency": "YUAN"}, "currency"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"provisioning": "smtp"}, "provisioning"),
        ({"provisioning": "http"}, "provisioning_url"),
        ({"provisioning": "http", "provisioning_url": "ftp://host.example/"}, "provisioning_url"),
        ({"provisioning": "http", "provisioning_url": "host.example"}, "provisioning_url"),
        ({"provisioning_url": "https://"}, "provisioning_url"),
    ],
)
def test_bad_host_input_is_refused_naming_the_field(session, kwargs, field):
    kwargs = {"code": "HOSTA", "name": "Host A", **kwargs}
    with pytest.raises(InvalidInput) as info:
        wholesale.upsert_host(session, **kwargs, actor=ACTOR, now=NOW)
    assert info.value.field == field
    assert session.exec(select(HostCarrier)).all() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"code": "AB"},
        {"code": "HOST_B-20" + "X" * 11},
        {"currency": "USD", "timezone": "Europe/Paris"},
        {"timezone": "UTC"},
        {"provisioning": "http", "provisioning_url": "http://10.0.0.5:8080/events"},
        {"provisioning": "http", "provisioning_url": "https://host.example/provisioning"},
    ],
)
def test_good_host_input_is_accepted(session, kwargs):
    kwargs = {"code": "HOSTA", "name": "Host A", **kwargs}
    host = wholesale.upsert_host(session, **kwargs, actor=ACTOR, now=NOW)
    for name, value in kwargs.items():
        assert getattr(host, name) == value


def test_host_readers(session):
    b = make_host(session, code="HOSTB")
    a = make_host(session, code="HOSTA")
    assert wholesale.get_host(session, a.id) is a
    assert wholesale.find_host_by_code(session, "HOSTB") is b
    assert wholesale.find_host_by_code(session, "NOPE") is None
    assert wholesale.get_host_by_code(session, "HOSTA") is a
    assert wholesale.list_hosts(session) == [a, b]
    with pytest.raises(HostNotFound):
        wholesale.get_host(session, 999_999)
    with pytest.raises(HostNotFound) as info:
        wholesale.get_host_by_code(session, "NOPE")
    assert "NOPE" in info.value.message
    assert info.value.http_status == 404


def test_host_date_is_the_date_in_the_hosts_time_zone(session):
    host = make_host(session)
    evening_utc = datetime.fromisoformat("2026-01-31T16:30:00+00:00")
    assert wholesale.host_date(host, now=evening_utc) == date(2026, 2, 1)
    assert wholesale.local_date("UTC", now=evening_utc) == date(2026, 1, 31)


# -- rate cards ----------------------------------------------------------------------


def test_add_rate_card_stores_micro_prices_and_audits(session):
    host = make_host(session)
    card = make_rate_card(session, host=host)
    assert card.data_per_mb_micro == 2_500
    assert card.line_per_month_micro == 1_200_000
    assert card.retail_number_per_month_micro == 1_000_000
    assert all(card.price(s) == PRICES_MICRO[s] for s in PRICES_MICRO)
    [audit] = audits(session, "rate_card.add")
    assert audit.details["host"] == "HOSTA"
    assert audit.details["effective_from"] == "2026-01-01"
    assert audit.details["prices_micro"] == PRICES_MICRO
    assert audit.details["non_compliant"] == []


def test_the_same_rate_card_twice_returns_the_first_and_writes_nothing(session):
    host = make_host(session)
    first = make_rate_card(session, host=host)
    again = make_rate_card(session, host=host, now=NOW + timedelta(hours=1))
    assert again.id == first.id
    assert len(session.exec(select(RateCard)).all()) == 1
    assert len(audits(session, "rate_card.add")) == 1


def test_a_rate_card_for_an_existing_date_with_other_prices_is_a_conflict(session):
    host = make_host(session)
    make_rate_card(session, host=host)
    with pytest.raises(RateCardConflict) as info:
        make_rate_card(session, host=host, data=2_600)
    assert info.value.http_status == 409
    assert "new effective date" in info.value.message
    assert [c.data_per_mb_micro for c in session.exec(select(RateCard))] == [2_500]


def test_another_host_may_have_a_card_on_the_same_date(session):
    make_rate_card(session, host=make_host(session, code="HOSTA"))
    make_rate_card(session, host=make_host(session, code="HOSTB"), data=3_000)
    assert len(session.exec(select(RateCard)).all()) == 2


@pytest.mark.parametrize(
    ("prices", "retail", "field"),
    [
        ({k: v for k, v in PRICES_MICRO.items() if k != "number"}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "fax": 1}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "data": -1}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "voice": 1.5}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "sms": True}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "sms": "15000"}, RETAIL_MICRO, "prices_micro"),
        ({**PRICES_MICRO, "line": 2**31}, RETAIL_MICRO, "prices_micro"),
        (PRICES_MICRO, {**RETAIL_MICRO, "line": -1}, "retail_micro"),
        (PRICES_MICRO, {}, "retail_micro"),
    ],
)
def test_bad_rate_card_prices_are_refused(session, prices, retail, field):
    host = make_host(session)
    with pytest.raises(InvalidInput) as info:
        wholesale.add_rate_card(
            session,
            host_id=host.id,
            effective_from=date(2026, 1, 1),
            prices_micro=prices,
            retail_micro=retail,
            actor=ACTOR,
            now=NOW,
        )
    assert info.value.field == field
    assert session.exec(select(RateCard)).all() == []


def test_zero_prices_are_allowed(session):
    host = make_host(session)
    card = make_rate_card(session, host=host, number=0)
    assert card.number_per_month_micro == 0


def test_a_rate_card_for_an_unknown_host_is_refused(session):
    with pytest.raises(HostNotFound):
        wholesale.add_rate_card(
            session,
            host_id=999_999,
            effective_from=date(2026, 1, 1),
            prices_micro=PRICES_MICRO,
            retail_micro=RETAIL_MICRO,
            actor=ACTOR,
            now=NOW,
        )


def test_a_datetime_is_not_an_effective_date(session):
    host = make_host(session)
    with pytest.raises(InvalidInput) as info:
        wholesale.add_rate_card(
            session,
            host_id=host.id,
            effective_from=NOW,
            prices_micro=PRICES_MICRO,
            retail_micro=RETAIL_MICRO,
            actor=ACTOR,
            now=NOW,
        )
    assert info.value.field == "effective_from"


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2025, 12, 31), None),
        (date(2026, 1, 1), "january"),
        (date(2026, 2, 28), "january"),
        (date(2026, 3, 1), "march"),
        (date(2030, 1, 1), "march"),
    ],
)
def test_rate_card_on_picks_the_card_in_force_that_day(session, on, expected):
    host = make_host(session)
    other = make_host(session, code="HOSTB")
    cards = {
        "march": make_rate_card(session, host=host, effective_from=date(2026, 3, 1), data=3_000),
        "january": make_rate_card(session, host=host, effective_from=date(2026, 1, 1)),
    }
    make_rate_card(session, host=other, effective_from=date(2025, 1, 1))
    found = wholesale.rate_card_on(session, host_id=host.id, on=on)
    assert found is (cards[expected] if expected else None)


def test_list_rate_cards_is_newest_first_and_per_host(session):
    host = make_host(session)
    jan = make_rate_card(session, host=host, effective_from=date(2026, 1, 1))
    jul = make_rate_card(session, host=host, effective_from=date(2026, 7, 1))
    mar = make_rate_card(session, host=host, effective_from=date(2026, 3, 1))
    make_rate_card(session, host=make_host(session, code="HOSTB"))
    assert wholesale.list_rate_cards(session, host_id=host.id) == [jul, mar, jan]


def test_a_wholesale_price_not_below_the_hosts_retail_price_is_non_compliant(session):
    host = make_host(session)
    # Equal to retail is not below it; above it is worse; one micro-unit below complies.
    card = make_rate_card(session, host=host, data=10_000, voice=100_001, sms=99_999)
    assert not card.compliant("data")
    assert not card.compliant("voice")
    assert card.compliant("sms")
    assert card.non_compliant_services == ["data", "voice"]
    [audit] = audits(session, "rate_card.add")
    assert audit.details["non_compliant"] == ["data", "voice"]
