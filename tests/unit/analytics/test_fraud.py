"""The fraud and anomaly rules on crafted daily usage and voucher attempts, and the scan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from app.analytics.errors import RuleInvalid
from app.analytics.fraud import scan_fraud
from app.analytics.fraud_rules import get_rule_settings, update_rule_settings
from app.analytics.models import FraudAlert, default_params
from app.charging.models import LineUsageDay
from app.core.audit import AuditEntry
from app.payments.models import VoucherAttempt
from app.subscribers.models import Line
from tests.unit.subscribers.helpers import STAFF, World, make_line, make_world

ZONE = "Asia/Shanghai"
TODAY = date(2026, 10, 20)
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=ZoneInfo(ZONE))


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, code="HOSTA")


def only(session: Session, rule: str, **params: int) -> None:
    """Switch every other rule off and set this one's thresholds (defaults for the rest)."""
    for other in ("usage_spike", "sim_box", "new_line_burst", "voucher_failures"):
        update_rule_settings(
            session,
            rule=other,
            enabled=other == rule,
            auto_suspend=False,
            params={**default_params(other), **(params if other == rule else {})},
            actor=STAFF,
            now=NOW,
        )


def usage(session: Session, line: Line, day: date, **counts: int) -> None:
    session.add(LineUsageDay(line_id=line.id, day=day, **counts))
    session.flush()


def history(session: Session, line: Line, days: int, **counts: int) -> None:
    """`days` days of the same usage ending the day before TODAY."""
    for n in range(1, days + 1):
        usage(session, line, TODAY - timedelta(days=n), **counts)


def alerts(session: Session, rule: str | None = None) -> list[FraudAlert]:
    query = select(FraudAlert).order_by(FraudAlert.id)
    if rule:
        query = query.where(FraudAlert.rule == rule)
    return list(session.exec(query))


def lines_alerted(session: Session, rule: str) -> set[int]:
    return {a.line_id for a in alerts(session, rule) if a.line_id is not None}


def test_usage_spike_fires_above_k_times_the_median_not_at_it(session, world):
    only(session, "usage_spike", factor_pct=500, history_days=7, min_data_kb=500_000)
    above, at, small, new = (make_line(session, world) for _ in range(4))
    for line in (above, at, new):
        history(session, line, 10, data_kb=200_000)
    usage(session, above, TODAY, data_kb=1_000_001)
    usage(session, at, TODAY, data_kb=1_000_000)
    # Far above its own median but under the least amount: tiny lines never alert.
    history(session, small, 10, data_kb=1_000)
    usage(session, small, TODAY, data_kb=499_999)
    scan_fraud(session, now=NOW, timezone=ZONE)
    assert lines_alerted(session, "usage_spike") == {above.id}
    alert = alerts(session, "usage_spike")[0]
    assert alert.day == TODAY and alert.customer_id == world.customer.id
    assert alert.figures["fired"] == ["data"]
    assert alert.figures["median_data_kb"] == 200_000
    assert alert.figures["history_days"] == 10


def test_usage_spike_needs_days_of_history_and_counts_idle_days_as_zero(session, world):
    only(session, "usage_spike", factor_pct=500, history_days=7, min_voice_s=3_600)
    short, idle = make_line(session, world), make_line(session, world)
    history(session, short, 6, voice_s=100)  # six days: one short of seven
    usage(session, short, TODAY, voice_s=10_000)
    # Used on 3 of the last 10 days: the median of the 10 days is 0, so 3,600 s fires.
    usage(session, idle, TODAY - timedelta(days=10), voice_s=5_000)
    usage(session, idle, TODAY - timedelta(days=5), voice_s=5_000)
    usage(session, idle, TODAY - timedelta(days=1), voice_s=5_000)
    usage(session, idle, TODAY, voice_s=3_600)
    scan_fraud(session, now=NOW, timezone=ZONE)
    assert lines_alerted(session, "usage_spike") == {idle.id}
    assert alerts(session, "usage_spike")[0].figures["median_voice_s"] == 0


def test_sim_box_counts_calls_and_the_share_of_incoming(session, world):
    only(session, "sim_box", min_calls=100, max_incoming_pct=2)
    boxed, answered, quiet = (make_line(session, world) for _ in range(3))
    usage(session, boxed, TODAY, voice_calls=100, incoming_calls=2)  # 2 % exactly: fires
    usage(session, answered, TODAY, voice_calls=100, incoming_calls=3)
    usage(session, quiet, TODAY, voice_calls=99, incoming_calls=0)
    scan_fraud(session, now=NOW, timezone=ZONE)
    assert lines_alerted(session, "sim_box") == {boxed.id}
    assert alerts(session, "sim_box")[0].figures["incoming_calls"] == 2


def test_new_line_burst_fires_above_the_first_day_allowance(session, world):
    only(session, "new_line_burst", max_data_kb=1_000, max_voice_s=600)
    heavy, edge, talker = (make_line(session, world) for _ in range(3))
    usage(session, heavy, TODAY - timedelta(days=1), data_kb=600, early_data_kb=600)
    usage(session, heavy, TODAY, data_kb=401, early_data_kb=401)
    usage(session, edge, TODAY, data_kb=5_000, early_data_kb=1_000, early_voice_s=600)
    usage(session, talker, TODAY, voice_s=601, early_voice_s=601)
    scan_fraud(session, now=NOW, timezone=ZONE)
    assert lines_alerted(session, "new_line_burst") == {heavy.id, talker.id}
    first = next(a for a in alerts(session) if a.line_id == heavy.id)
    assert first.day == TODAY - timedelta(days=1)
    assert first.figures["early_data_kb"] == 1_001


def _failures(session: Session, customer_id: int, start: datetime, minutes: list[int]) -> None:
    for m in minutes:
        at = start + timedelta(minutes=m)
        session.add(VoucherAttempt(customer_id=customer_id, ip="10.0.0.1", success=False, at=at))
    session.flush()


def test_voucher_failures_within_the_window(session, world):
    from app.subscribers.services import create_customer

    only(session, "voucher_failures", min_failures=5, window_minutes=60)
    start = datetime(2026, 10, 20, 1, 0, tzinfo=UTC)
    guesser = world.customer
    spread = create_customer(session, ref="C-SPREAD", name="Spread", now=NOW)
    few = create_customer(session, ref="C-FEW", name="Few", now=NOW)
    _failures(session, guesser.id, start, [0, 10, 20, 30, 59])
    # The fifth comes 60 minutes after the first: the first has left the window.
    _failures(session, spread.id, start, [0, 15, 30, 45, 60])
    _failures(session, few.id, start, [0, 1, 2, 3])
    session.add(VoucherAttempt(customer_id=few.id, ip="", success=True, at=start))
    scan_fraud(session, now=NOW, timezone=ZONE)
    found = alerts(session, "voucher_failures")
    assert [(a.customer_id, a.line_id, a.subject) for a in found] == [
        (guesser.id, None, f"customer:{guesser.id}")
    ]
    assert found[0].figures["failures"] == 5 and found[0].day == TODAY


def test_a_scan_again_raises_nothing_new(session, world):
    only(session, "sim_box", min_calls=10, max_incoming_pct=0)
    line = make_line(session, world)
    usage(session, line, TODAY, voice_calls=10)
    usage(session, line, TODAY - timedelta(days=1), voice_calls=10)
    first = scan_fraud(session, now=NOW, timezone=ZONE)
    again = scan_fraud(session, now=NOW + timedelta(hours=1), timezone=ZONE)
    assert first.raised["sim_box"] == 2 and again.raised["sim_box"] == 0
    assert len(alerts(session)) == 2
    raised = session.exec(select(AuditEntry).where(AuditEntry.action == "fraud_alert.raise")).all()
    assert len(raised) == 2


def test_days_before_the_scanned_ones_are_left_alone(session, world):
    only(session, "sim_box", min_calls=10, max_incoming_pct=0)
    line = make_line(session, world)
    usage(session, line, TODAY - timedelta(days=4), voice_calls=50)
    usage(session, line, TODAY - timedelta(days=3), voice_calls=50)
    scan_fraud(session, now=NOW, timezone=ZONE)
    assert [a.day for a in alerts(session)] == [TODAY - timedelta(days=3)]


def test_automatic_suspension_when_switched_on(session, world):
    only(session, "sim_box", min_calls=10, max_incoming_pct=0)
    update_rule_settings(
        session,
        rule="sim_box",
        enabled=True,
        auto_suspend=True,
        params={"min_calls": 10, "max_incoming_pct": 0},
        actor=STAFF,
        now=NOW,
    )
    line = make_line(session, world)
    usage(session, line, TODAY, voice_calls=10)
    report = scan_fraud(session, now=NOW, timezone=ZONE)
    session.refresh(line)
    assert report.suspended == 1 and line.status == "suspended"
    assert alerts(session)[0].suspended_at is not None


def test_a_rule_switched_off_raises_nothing(session, world):
    only(session, "sim_box", min_calls=10, max_incoming_pct=0)
    update_rule_settings(
        session,
        rule="sim_box",
        enabled=False,
        auto_suspend=False,
        params={"min_calls": 10, "max_incoming_pct": 0},
        actor=STAFF,
        now=NOW,
    )
    usage(session, make_line(session, world), TODAY, voice_calls=500)
    assert scan_fraud(session, now=NOW, timezone=ZONE).alert_ids == []


def test_rule_settings_are_checked_and_audited(session):
    assert get_rule_settings(session, "usage_spike").params == default_params("usage_spike")
    bad = {**default_params("sim_box"), "max_incoming_pct": 101}
    with pytest.raises(RuleInvalid) as refused:
        update_rule_settings(
            session,
            rule="sim_box",
            enabled=True,
            auto_suspend=False,
            params=bad,
            actor=STAFF,
            now=NOW,
        )
    assert refused.value.field == "max_incoming_pct"
    with pytest.raises(RuleInvalid):
        update_rule_settings(
            session,
            rule="voucher_failures",
            enabled=True,
            auto_suspend=True,
            params=default_params("voucher_failures"),
            actor=STAFF,
            now=NOW,
        )
    with pytest.raises(RuleInvalid):
        update_rule_settings(
            session,
            rule="sim_box",
            enabled=True,
            auto_suspend=False,
            params={**default_params("sim_box"), "extra": 1},
            actor=STAFF,
            now=NOW,
        )
    saved = update_rule_settings(
        session,
        rule="sim_box",
        enabled=True,
        auto_suspend=True,
        params={**default_params("sim_box"), "min_calls": 40},
        actor=STAFF,
        now=NOW,
    )
    assert saved.params["min_calls"] == 40 and saved.auto_suspend
    assert get_rule_settings(session, "sim_box") == saved
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "fraud_rule.update")).one()
    assert entry.details["params"]["after"]["min_calls"] == 40


def test_wrong_voucher_pins_through_redemption_raise_one_alert(session, world):
    from app.payments.errors import VoucherInvalid
    from tests.unit.payments.test_vouchers import WRONG_PIN, make_batch, redeem

    only(session, "voucher_failures", min_failures=5, window_minutes=60)
    _, [(serial, _pin), _] = make_batch(session)
    start = NOW - timedelta(hours=2)
    for i in range(5):
        with pytest.raises(VoucherInvalid):
            redeem(session, world.customer.id, serial, WRONG_PIN, now=start + timedelta(minutes=i))
    scan_fraud(session, now=NOW, timezone=ZONE)
    scan_fraud(session, now=NOW + timedelta(minutes=30), timezone=ZONE)
    found = alerts(session, "voucher_failures")
    assert len(found) == 1 and found[0].customer_id == world.customer.id


def test_alert_actions_keep_to_their_states(session, world):
    from app.analytics.errors import AlertNotFound, AlertStateError
    from app.analytics.fraud_alerts import set_alert_status, suspend_alert_line
    from app.subscribers.lifecycle import terminate_line

    only(session, "sim_box", min_calls=10, max_incoming_pct=0)
    line = make_line(session, world)
    usage(session, line, TODAY, voice_calls=10)
    [alert_id] = scan_fraud(session, now=NOW, timezone=ZONE).alert_ids
    done = set_alert_status(session, alert_id=alert_id, status="acknowledged", actor=STAFF, now=NOW)
    again = set_alert_status(
        session, alert_id=alert_id, status="acknowledged", actor=STAFF, now=NOW
    )
    assert done.status == again.status == "acknowledged"
    with pytest.raises(AlertStateError):
        set_alert_status(session, alert_id=alert_id, status="dismissed", actor=STAFF, now=NOW)
    with pytest.raises(AlertNotFound):
        set_alert_status(session, alert_id=alert_id + 999, status="dismissed", actor=STAFF, now=NOW)
    terminate_line(
        session, line_id=line.id, reason="test", quarantine_days=90, actor=STAFF, now=NOW
    )
    with pytest.raises(AlertStateError):
        suspend_alert_line(session, alert_id=alert_id, actor=STAFF, now=NOW)
