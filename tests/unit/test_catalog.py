from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select

from app.catalog import CatalogInvalid, CatalogRefused, Problem, blocks, load_catalog, loader
from app.catalog.errors import HostCurrencyChange
from app.catalog.hosts import apply_host
from app.catalog.parsing import MAX_FILE_BYTES
from app.catalog.rows import HostRow
from app.core.audit import AuditEntry
from numbering.errors import BlockOverlap
from numbering.models import NumberBlock, PhoneNumber
from plans.models import AddOn, Plan
from plans.pricing import plan_margin
from plans.services import find_plan_by_code, list_plan_versions
from tests.factories import NOW
from tests.unit.wholesale.helpers import ACTOR, make_host, make_rate_card
from wholesale.models import HostCarrier, RateCard

EXAMPLE = (Path(__file__).resolve().parents[1] / "fixtures" / "catalog.toml").read_text(
    encoding="utf-8"
)
LATER = NOW + timedelta(days=1)
NOTHING = {"created": 0, "updated": 0, "unchanged": 0}

HOST = """
[[hosts]]
code = "HOSTA"
name = "Host Carrier A"
"""
RATE_CARD = """
[[rate_cards]]
host = "HOSTA"
effective_from = 2026-01-01
data_per_mb = "0.0025"
voice_per_min = "0.0400"
sms_per_msg = "0.0150"
line_per_month = "1.20"
number_per_month = "0.10"

[rate_cards.host_best_retail]
data_per_mb = "0.0100"
voice_per_min = "0.1000"
sms_per_msg = "0.1000"
line_per_month = "8.00"
number_per_month = "1.00"
"""
PLAN = """
[[plans]]
code = "BASIC"
name = { en = "Basic" }
status = "published"
price = "10.00"
validity_days = 30
data_mb = 1024
"""


def load(session, text, *, filename="catalog.toml", now=NOW):
    return load_catalog(session, text=text, filename=filename, actor=ACTOR, now=now)


def problems_of(session, text, *, filename="bad.toml"):
    with pytest.raises(CatalogInvalid) as info:
        load(session, text, filename=filename)
    return info.value.problems


def count(session, model):
    return session.exec(select(func.count()).select_from(model)).one()


def audit_actions(session):
    return [a.action for a in session.exec(select(AuditEntry).order_by(AuditEntry.id))]


def assert_nothing_loaded(session):
    for model in (HostCarrier, RateCard, NumberBlock, PhoneNumber, Plan, AddOn, AuditEntry):
        assert count(session, model) == 0, model.__name__


# -- the example file ----------------------------------------------------------------


def test_the_example_catalog_loads(session):
    report = load(session, EXAMPLE)
    created = {"created": 1, "updated": 0, "unchanged": 0}
    assert report.to_dict() == {
        "file": "catalog.toml",
        "hosts": created,
        "rate_cards": created,
        "number_blocks": created,
        "plans": created,
        "addons": NOTHING,
    }
    assert report.changed
    host = session.exec(select(HostCarrier)).one()
    assert (host.code, host.currency, host.timezone, host.provisioning) == (
        "HOSTA",
        "CNY",
        "Asia/Shanghai",
        "log",
    )
    card = session.exec(select(RateCard)).one()
    assert card.effective_from == date(2026, 1, 1)
    assert [card.price(s) for s in ("data", "voice", "sms", "line", "number")] == [
        2_500,
        40_000,
        15_000,
        1_200_000,
        100_000,
    ]
    assert card.retail_price("data") == 10_000
    assert card.non_compliant_services == []
    block = session.exec(select(NumberBlock)).one()
    assert (block.first, block.last, block.size) == ("+8617012340000", "+8617012349999", 10_000)
    assert count(session, PhoneNumber) == 10_000
    plan = session.exec(select(Plan)).one()
    assert (plan.code, plan.version, plan.status, plan.price_minor) == (
        "LITE30",
        1,
        "published",
        3900,
    )
    assert plan.names == {"zh_Hans": "轻享套餐", "en": "Lite"}
    assert plan.descriptions["en"] == "10 GB, 200 minutes and 100 SMS a month"
    assert (plan.data_mb, plan.voice_min, plan.sms, plan.voice_increment_s) == (10240, 200, 100, 60)
    assert (
        plan.overage_data_per_mb_minor,
        plan.overage_voice_per_min_minor,
        plan.overage_sms_minor,
    ) == (5, 15, 10)
    assert plan.auto_renew_default is True
    assert plan_margin(session, plan=plan, on=date(2026, 11, 1)).margin_minor == 270
    summary = session.exec(select(AuditEntry).where(AuditEntry.action == "catalog.load")).one()
    assert summary.details["file"] == "catalog.toml"
    assert summary.details["counts"]["plans"] == created


def test_loading_the_same_file_twice_changes_nothing(session):
    load(session, EXAMPLE)
    actions = audit_actions(session)
    report = load(session, EXAMPLE, now=LATER)
    unchanged = {"created": 0, "updated": 0, "unchanged": 1}
    assert report.counts == {
        "hosts": unchanged,
        "rate_cards": unchanged,
        "number_blocks": unchanged,
        "plans": unchanged,
        "addons": NOTHING,
    }
    assert not report.changed
    assert audit_actions(session) == [*actions, "catalog.load"]
    assert [(p.version, p.status) for p in session.exec(select(Plan))] == [(1, "published")]
    assert count(session, PhoneNumber) == 10_000


def test_a_reload_with_new_terms_publishes_version_2_and_retires_version_1(session):
    load(session, EXAMPLE)
    report = load(session, EXAMPLE.replace('price = "39.00"', 'price = "42.00"'), now=LATER)
    assert report.counts["plans"] == {"created": 0, "updated": 1, "unchanged": 0}
    versions = list_plan_versions(session, code="LITE30")
    assert [(p.version, p.status, p.price_minor) for p in versions] == [
        (2, "published", 4200),
        (1, "retired", 3900),
    ]


def test_a_reload_with_status_retired_retires_the_plan(session):
    load(session, EXAMPLE)
    report = load(session, EXAMPLE.replace('status = "published"', 'status = "retired"'), now=LATER)
    assert report.counts["plans"] == {"created": 0, "updated": 1, "unchanged": 0}
    plan = find_plan_by_code(session, "LITE30")
    assert (plan.version, plan.status, plan.retired_at) == (1, "retired", LATER)


def test_a_changed_host_name_updates_the_host(session):
    load(session, EXAMPLE)
    report = load(session, EXAMPLE.replace('"Host Carrier A"', '"Host A Ltd"'), now=LATER)
    assert report.counts["hosts"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert session.exec(select(HostCarrier)).one().name == "Host A Ltd"


def test_a_plan_without_host_uses_the_only_host_in_the_database(session):
    load(session, HOST + RATE_CARD)
    report = load(session, PLAN)
    assert report.counts["plans"]["created"] == 1
    plan = find_plan_by_code(session, "BASIC")
    assert (plan.status, plan.host_id) == ("published", session.exec(select(HostCarrier)).one().id)


def test_draft_plans_and_addons_load_idempotently(session):
    text = (
        HOST
        + PLAN.replace("published", "draft")
        + """
[[addons]]
code = "DATA1G"
name = { en = "1 GB", zh_Hans = "1GB 流量包" }
price = "10.00"
data_mb = 1024
status = "published"
"""
    )
    first = load(session, text)
    assert first.counts["plans"]["created"] == 1
    assert first.counts["addons"] == {"created": 1, "updated": 0, "unchanged": 0}
    second = load(session, text)
    assert second.counts["addons"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert second.counts["plans"] == {"created": 0, "updated": 0, "unchanged": 1}
    addon = session.exec(select(AddOn)).one()
    assert (addon.price_minor, addon.data_mb, addon.status) == (1000, 1024, "published")
    assert find_plan_by_code(session, "BASIC").status == "draft"


# -- problems ------------------------------------------------------------------------

SEVERAL_BAD = """
[[hosts]]
code = "hostb"
name = "Host B"
currency = "YUAN"

[[hosts]]
code = "HOSTA"
name = "Host A"
region = "north"

[[rate_cards]]
host = "HOSTZ"
effective_from = "2026-01-01"
data_per_mb = "0.0000001"
voice_per_min = "0.04"
sms_per_msg = "0.015"
line_per_month = "1.20"
number_per_month = "0.10"

[rate_cards.host_best_retail]
data_per_mb = "0.01"
voice_per_min = "0.1"
sms_per_msg = "0.1"
line_per_month = "8"

[[number_blocks]]
host = "HOSTA"
first = "+8617012349999"
last = "+8617012340000"

[[number_blocks]]
host = "HOSTA"
first = "+86170"
last = "+8617012340000"

[[plans]]
code = "LITE30"
host = "HOSTA"
name = { en = "Lite" }
price = "39.001"
validity_days = 731
data_mb = -1

[[plans]]
code = "MAX"
host = "NOPE"
name = { en = "Max" }
price = "99.00"
validity_days = 30
colour = "red"

[[addons]]
code = "DATA0"
name = { en = "Nothing" }
price = "1.00"
data_mb = 0

[[sims]]
iccid = "8986001234567890123"
"""


def test_a_file_with_several_bad_entries_reports_every_problem_and_loads_nothing(session):
    with pytest.raises(CatalogInvalid) as info:
        load(session, SEVERAL_BAD, filename="bad.toml")
    problems = info.value.problems
    assert all(isinstance(p, Problem) and p.file == "bad.toml" for p in problems)
    found = [(p.table, p.key, p.reason) for p in problems]
    expected = [
        ("sims", "", "unknown table"),
        ("hosts", "hostb", "A host code is 2 to 20 characters"),
        ("hosts", "hostb", "'YUAN' is not an ISO 4217 currency code"),
        ("hosts", "HOSTA", "unknown key 'region'"),
        ("rate_cards", "HOSTZ 2026-01-01", "unknown host 'HOSTZ'"),
        ("rate_cards", "HOSTZ 2026-01-01", "data_per_mb: '0.0000001' has more than 6 decimal"),
        ("rate_cards", "HOSTZ 2026-01-01", "missing key 'number_per_month' in host_best_retail"),
        ("number_blocks", "HOSTA +8617012349999", "first must not be after last"),
        ("number_blocks", "HOSTA +86170", "first: '+86170' is not a valid number"),
        ("plans", "LITE30", "price: '39.001' has more than 2 decimal places"),
        ("plans", "LITE30", "validity_days must be from 1 to 730 days"),
        ("plans", "LITE30", "data_mb must not be negative"),
        ("plans", "MAX", "unknown key 'colour'"),
        ("plans", "MAX", "unknown host 'NOPE'"),
        ("addons", "DATA0", "data_mb must be from 1 to"),
    ]
    assert len(found) == len(expected), "\n".join(map(str, problems))
    for (table, key, reason), (want_table, want_key, want_reason) in zip(
        found, expected, strict=True
    ):
        assert (table, key) == (want_table, want_key)
        assert want_reason in reason, reason
    assert info.value.message == f"{len(expected)} problem(s) in bad.toml; nothing loaded"
    assert info.value.http_status == 422
    assert info.value.details()["problems"][0] == {
        "file": "bad.toml",
        "table": "sims",
        "key": "",
        "reason": info.value.problems[0].reason,
    }
    assert_nothing_loaded(session)


def test_malformed_toml_is_one_problem_with_line_and_column(session):
    problems = problems_of(session, HOST + '\n[[plans]]\ncode = "LITE30\n')
    assert len(problems) == 1
    assert problems[0].file == "bad.toml"
    assert "malformed TOML" in problems[0].reason
    assert "line 7, column" in problems[0].reason
    assert_nothing_loaded(session)


@pytest.mark.parametrize(
    ("old", "new", "table", "reason"),
    [
        ('price = "39.00"', 'price = "39.001"', "plans", "price: '39.001' has more than 2"),
        ('overage_sms = "0.10"', 'overage_sms = "0.105"', "plans", "overage_sms: '0.105'"),
        ('price = "39.00"', "price = 39.0", "plans", "price must be a decimal string"),
        ('price = "39.00"', 'price = "-39.00"', "plans", "'-39.00' is negative"),
        ('data_per_mb = "0.0025"', 'data_per_mb = "0.0025001"', "rate_cards", "more than 6"),
        (
            'line_per_month = "8.00"',
            'line_per_month = "8.0000001"',
            "rate_cards",
            "host_best_retail.line_per_month: '8.0000001' has more than 6",
        ),
        ("validity_days = 30", "validity_days = 731", "plans", "730"),
        ("voice_increment_s = 60", "voice_increment_s = 0", "plans", "voice_increment_s"),
        ("auto_renew = true", 'auto_renew = "yes"', "plans", "auto_renew must be true or false"),
        ('status = "published"', 'status = "live"', "plans", "status must be one of"),
        ('en = "Lite"', 'en = "Lite\\u0007"', "plans", "name.en must not contain control"),
        ('effective_from = "2026-01-01"', 'effective_from = "1/1/2026"', "rate_cards", "date"),
        ('currency = "CNY"', 'currency = "RMB"', "hosts", "ISO 4217"),
        ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"', "hosts", "time zone"),
        ('provisioning = "log"', 'provisioning = "http"', "hosts", "provisioning URL"),
    ],
)
def test_a_bad_value_in_the_example_is_reported_and_nothing_loaded(
    session, old, new, table, reason
):
    assert old in EXAMPLE
    problems = problems_of(session, EXAMPLE.replace(old, new, 1))
    assert [p.table for p in problems] == [table]
    assert reason in problems[0].reason
    assert_nothing_loaded(session)


def test_overlapping_blocks_in_the_file_are_reported(session):
    text = EXAMPLE + '[[number_blocks]]\nhost = "HOSTA"\nfirst = "+8617012349999"\n'
    problems = problems_of(session, text + 'last = "+8617012350000"\n')
    assert [(p.table, p.key) for p in problems] == [("number_blocks", "HOSTA +8617012349999")]
    assert "overlaps the block HOSTA +8617012340000 in this file" in problems[0].reason


def test_a_block_over_a_million_numbers_is_reported(session):
    problems = problems_of(
        session, EXAMPLE.replace('last = "+8617012349999"', 'last = "+8617013340000"')
    )
    assert [(p.table, p.key) for p in problems] == [("number_blocks", "HOSTA +8617012340000")]
    assert "at most 1,000,000 numbers" in problems[0].reason


@pytest.mark.parametrize(
    ("text", "table", "reason"),
    [
        (EXAMPLE.replace('code = "LITE30"', 'code = "LITE30"\ncolour = "red"'), "plans", "colour"),
        (EXAMPLE.replace('name = "Host Carrier A"', 'name = "A"\nregion = "N"'), "hosts", "region"),
        (
            EXAMPLE.replace('last = "+8617012349999"', 'last = "+8617012349999"\nsize = 1'),
            "number_blocks",
            "size",
        ),
        (EXAMPLE + '\n[[sims]]\niccid = "1"\n', "sims", "unknown table"),
        (
            EXAMPLE.replace('number_per_month = "1.00"', 'number_per_month = "1.00"\nfax = "1"'),
            "rate_cards",
            "unknown key 'fax' in host_best_retail",
        ),
    ],
)
def test_unknown_keys_and_tables_are_problems(session, text, table, reason):
    problems = problems_of(session, text)
    assert [p.table for p in problems] == [table]
    assert reason in problems[0].reason
    assert_nothing_loaded(session)


def test_unknown_host_references_are_problems(session):
    text = EXAMPLE.replace('host = "HOSTA"', 'host = "HOSTZ"') + PLAN + 'host = "HOSTQ"\n'
    problems = problems_of(session, text)
    assert [(p.table, p.key) for p in problems] == [
        ("rate_cards", "HOSTZ 2026-01-01"),
        ("number_blocks", "HOSTZ +8617012340000"),
        ("plans", "BASIC"),
    ]
    assert all("unknown host" in p.reason for p in problems)


def test_a_plan_without_host_among_several_hosts_is_a_problem(session):
    make_host(session, code="HOSTB")
    problems = problems_of(session, EXAMPLE)
    assert [(p.table, p.key) for p in problems] == [("plans", "LITE30")]
    assert "2 hosts" in problems[0].reason
    assert 'host = "CODE"' in problems[0].reason


def test_a_catalog_cannot_publish_a_negative_margin(session):
    problems = problems_of(session, EXAMPLE.replace('price = "39.00"', 'price = "36.29"'))
    assert [(p.table, p.key) for p in problems] == [("plans", "LITE30")]
    assert "negative margin of -0.01 CNY" in problems[0].reason
    assert_nothing_loaded(session)


def test_a_catalog_cannot_publish_without_a_rate_card_in_force(session):
    problems = problems_of(
        session, EXAMPLE.replace('effective_from = "2026-01-01"', 'effective_from = "2026-12-01"')
    )
    assert [(p.table, p.key) for p in problems] == [("plans", "LITE30")]
    assert "no rate card in force on 2026-11-01" in problems[0].reason


def test_a_rate_card_that_differs_from_the_database_is_a_problem(session):
    host = make_host(session, code="HOSTA", name="Host Carrier A")
    make_rate_card(session, host=host, data=2_400)
    problems = problems_of(session, EXAMPLE)
    assert [(p.table, p.key) for p in problems] == [("rate_cards", "HOSTA 2026-01-01")]
    assert "new effective_from" in problems[0].reason


def test_a_block_overlapping_another_hosts_block_is_a_problem(session):
    load(session, HOST.replace("HOSTA", "HOSTB") + RATE_CARD.replace("HOSTA", "HOSTB"))
    load(
        session,
        '[[number_blocks]]\nhost = "HOSTB"\nfirst = "+8617012349000"\nlast = "+8617012359999"\n',
    )
    problems = problems_of(session, EXAMPLE.replace("[[plans]]", '[[plans]]\nhost = "HOSTA"'))
    assert [(p.table, p.key) for p in problems] == [("number_blocks", "HOSTA +8617012340000")]
    assert "HOSTB" in problems[0].reason


def test_retiring_a_plan_that_was_never_published_is_a_problem(session):
    problems = problems_of(session, EXAMPLE.replace('status = "published"', 'status = "retired"'))
    assert [(p.table, p.key) for p in problems] == [("plans", "LITE30")]


def test_duplicate_rows_are_problems(session):
    problems = problems_of(session, EXAMPLE + PLAN.replace("BASIC", "LITE30") + HOST)
    assert [(p.table, p.key) for p in problems] == [("hosts", "HOSTA"), ("plans", "LITE30")]
    assert all("more than once" in p.reason for p in problems)


def test_a_refusal_while_applying_rolls_everything_back(session, monkeypatch):
    def refuse(session, **kwargs):
        raise BlockOverlap("%(first)s overlaps a block loaded meanwhile.", first=kwargs["first"])

    monkeypatch.setattr(blocks, "add_number_block", refuse)
    problems = problems_of(session, EXAMPLE)
    assert [(p.table, p.key, p.reason) for p in problems] == [
        (
            "number_blocks",
            "HOSTA +8617012340000",
            "+8617012340000 overlaps a block loaded meanwhile.",
        )
    ]
    assert_nothing_loaded(session)


# -- files refused as a whole ---------------------------------------------------------


def refusal_of(session, text, *, filename="bad.toml"):
    with pytest.raises(CatalogRefused) as info:
        load(session, text, filename=filename)
    message = info.value.message
    assert "\n" not in message
    assert message.startswith(f"{filename}: ") and message.endswith("; nothing loaded")
    return message


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000,
        "a = " + "{ b = " * 100_000,
        "hosts = " + "[" * 1_000 + "]" * 1_000,
        HOST + '[[plans]]\ncode = "X"\nname = ' + "{ a = " * 5_000 + "1" + " }" * 5_000,
    ],
    ids=["open-arrays", "open-inline-tables", "closed-arrays", "plan-name"],
)
def test_a_deeply_nested_file_is_refused_not_a_recursion_error(session, text):
    message = refusal_of(session, text)
    assert "nested too deeply" in message
    assert_nothing_loaded(session)


def test_moderate_nesting_is_parsed_and_checked_as_usual(session):
    text = EXAMPLE.replace('en = "Lite" }', 'en = "Lite" }\nmeta = { a = { b = { c = [[[1]]] } } }')
    problems = problems_of(session, text)
    assert [(p.table, p.key) for p in problems] == [("plans", "LITE30")]
    assert "unknown key 'meta'" in problems[0].reason


@pytest.mark.parametrize(
    "padding",
    ["#" * MAX_FILE_BYTES, "# " + "轻" * (MAX_FILE_BYTES // 3 + 1)],
    ids=["ascii", "utf-8-bytes"],
)
def test_a_file_over_the_size_limit_is_refused(session, padding):
    message = refusal_of(session, EXAMPLE + "\n" + padding + "\n")
    assert "larger than 4 MiB" in message
    assert_nothing_loaded(session)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t\n\n",
        "# a catalog\n\n# with nothing in it\n",
        "hosts = []\n",
        "plans = []\naddons = []",
    ],
    ids=["empty", "whitespace", "comments", "empty-hosts", "empty-plans-and-addons"],
)
def test_a_file_with_nothing_to_load_is_refused(session, text):
    message = refusal_of(session, text, filename="empty.toml")
    assert message == (
        "empty.toml: empty: no [[hosts]], [[rate_cards]], [[number_blocks]], [[plans]] "
        "or [[addons]] rows; nothing loaded"
    )
    assert_nothing_loaded(session)


def test_an_empty_file_is_refused_even_when_the_database_has_a_catalog(session):
    load(session, EXAMPLE)
    actions = audit_actions(session)
    refusal_of(session, "# nothing\n")
    assert audit_actions(session) == actions


def snapshot(session):
    host = session.exec(select(HostCarrier)).one()
    return (
        (host.code, host.currency, host.name),
        audit_actions(session),
        [(p.version, p.status, p.price_minor) for p in session.exec(select(Plan))],
        count(session, RateCard),
    )


def test_a_new_currency_for_a_stored_host_is_refused_and_changes_nothing(session):
    load(session, EXAMPLE)
    before = snapshot(session)
    text = EXAMPLE.replace('currency = "CNY"', 'currency = "USD"').replace(
        'price = "39.00"', 'price = "6.00"'
    )
    message = refusal_of(session, text)
    assert message == (
        "bad.toml: host HOSTA is in CNY and the file gives USD; its prices and balances "
        "are held in CNY, so its currency cannot change; nothing loaded"
    )
    assert snapshot(session) == before


def test_a_currency_change_names_every_host_and_the_default_currency(session):
    make_host(session, code="HOSTA", currency="USD")
    make_host(session, code="HOSTB", currency="EUR")
    text = HOST + HOST.replace("HOSTA", "HOSTB") + 'currency = "GBP"\n'
    message = refusal_of(session, text)
    assert (
        "host HOSTA is in USD and the file gives CNY (the default when currency is not given)"
        in message
    )
    assert "host HOSTB is in EUR and the file gives GBP;" in message
    assert [
        (h.code, h.currency) for h in session.exec(select(HostCarrier).order_by(HostCarrier.code))
    ] == [
        ("HOSTA", "USD"),
        ("HOSTB", "EUR"),
    ]


def test_a_currency_changed_after_the_checks_is_refused_while_applying(session, monkeypatch):
    load(session, EXAMPLE)
    before = snapshot(session)
    monkeypatch.setattr(loader, "refuse_currency_changes", lambda *args: None)
    problems = problems_of(session, EXAMPLE.replace('currency = "CNY"', 'currency = "USD"'))
    assert [(p.table, p.key) for p in problems] == [("hosts", "HOSTA")]
    assert "host HOSTA is in CNY and the file gives USD" in problems[0].reason
    assert snapshot(session) == before


def test_apply_host_refuses_another_currency(session):
    make_host(session, code="HOSTA", currency="CNY")
    row = HostRow("HOSTA", {**HOST_FIELDS, "currency": "USD"})
    with pytest.raises(HostCurrencyChange) as info:
        apply_host(session, row, actor=ACTOR, now=NOW)
    assert info.value.http_status == 409
    assert session.exec(select(HostCarrier)).one().currency == "CNY"


HOST_FIELDS = {
    "code": "HOSTA",
    "name": "Host carrier HOSTA",
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "provisioning": "log",
    "provisioning_url": None,
}
