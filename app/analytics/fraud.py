"""The fraud and anomaly rules and the scan that raises their alerts.

A scan at `now` looks at the local days (`TIMEZONE`) from `SCAN_DAYS` before
today to today, so late usage files are still seen, and raises each finding
once (one alert per rule, subject and day). Usage comes from the daily rows
rating keeps (app/charging/usage_days.py, days in the host's zone):

* **usage_spike** — on a day the line used at least `min_data_kb` of data
  and more than `factor_pct` % of its median daily data, or at least
  `min_voice_s` of voice and more than `factor_pct` % of its median daily
  voice. The median is over the days of the 30 before that the line had
  already begun (from its first day with usage), days without usage counting
  as zero; at least `history_days` of them are needed.
* **sim_box** — at least `min_calls` outgoing voice calls in a day with
  incoming calls at most `max_incoming_pct` % of them. Incoming calls are
  the calls our other lines made to this line's number: the usage file has
  no direction column, and calls from other networks never reach our files,
  so the rule sees only calls between our lines (see usage_days.py).
* **new_line_burst** — more than `max_data_kb` of data or more than
  `max_voice_s` of voice within 24 hours of the start of the line's first
  period; the alert's day is the line's first day with usage.
* **voucher_failures** — at least `min_failures` failed voucher PINs of one
  customer within any `window_minutes`; the day is that of the failure that
  reached the count.

A rule switched off raises nothing. With `auto_suspend` on, a new alert of a
line rule suspends its line at once (`suspend_line`, audited) when the line
is active.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.analytics.fraud_alerts import suspend_for_alert
from app.analytics.fraud_rules import RuleSettings, list_rule_settings
from app.analytics.models import FraudAlert
from app.charging.models import LineUsageDay
from app.charging.usage_days import (
    busy_usage_days,
    early_usage,
    first_usage_days,
    list_usage_days,
)
from app.core.audit import Actor, record_audit
from app.payments.queries import failed_voucher_attempts
from app.subscribers.models import Line

SCAN_DAYS = 3
HISTORY_WINDOW_DAYS = 30
SCAN_ACTOR = Actor.system("fraud")


@dataclass(frozen=True)
class Finding:
    """What a rule found: its subject, day and figures."""

    rule: str
    day: date
    figures: dict[str, Any]
    line_id: int | None = None
    customer_id: int | None = None


@dataclass
class ScanReport:
    raised: dict[str, int] = field(default_factory=dict)
    suspended: int = 0
    alert_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "raised": dict(self.raised),
            "alerts": len(self.alert_ids),
            "suspended": self.suspended,
            "alert_ids": list(self.alert_ids),
        }


def _median_history(
    row: LineUsageDay, history: dict[date, LineUsageDay], first_day: date
) -> tuple[int, list[int], list[int]]:
    """Days of history before `row.day` and their data and voice, missing days as zero."""
    start = max(row.day - timedelta(days=HISTORY_WINDOW_DAYS), first_day)
    span = [start + timedelta(days=n) for n in range((row.day - start).days)]
    data = [history[d].data_kb if d in history else 0 for d in span]
    voice = [history[d].voice_s if d in history else 0 for d in span]
    return len(span), data, voice


def usage_spikes(session: Session, p: dict[str, int], first: date, last: date) -> list[Finding]:
    """The usage_spike findings on the days from `first` to `last` (see the module)."""
    busy = busy_usage_days(
        session, first=first, last=last, min_data_kb=p["min_data_kb"], min_voice_s=p["min_voice_s"]
    )
    if not busy:
        return []
    lines = {row.line_id for row in busy}
    by_line: dict[int, dict[date, LineUsageDay]] = defaultdict(dict)
    for row in list_usage_days(
        session,
        first=first - timedelta(days=HISTORY_WINDOW_DAYS),
        last=last - timedelta(days=1),
        line_ids=lines,
    ):
        by_line[row.line_id][row.day] = row
    firsts = first_usage_days(session, line_ids=lines)
    found = []
    for row in busy:
        days, data, voice = _median_history(row, by_line[row.line_id], firsts[row.line_id])
        if days < p["history_days"]:
            continue
        data_median, voice_median = statistics.median(data), statistics.median(voice)
        fired = []
        if row.data_kb >= p["min_data_kb"] and row.data_kb * 100 > p["factor_pct"] * data_median:
            fired.append("data")
        if row.voice_s >= p["min_voice_s"] and row.voice_s * 100 > p["factor_pct"] * voice_median:
            fired.append("voice")
        if fired:
            figures = {
                "fired": fired,
                "data_kb": row.data_kb,
                "median_data_kb": data_median,
                "voice_s": row.voice_s,
                "median_voice_s": voice_median,
                "history_days": days,
                "factor_pct": p["factor_pct"],
            }
            found.append(Finding("usage_spike", row.day, figures, line_id=row.line_id))
    return found


def sim_boxes(session: Session, p: dict[str, int], first: date, last: date) -> list[Finding]:
    """The sim_box findings on the days from `first` to `last` (see the module)."""
    rows = busy_usage_days(session, first=first, last=last, min_voice_calls=p["min_calls"])
    return [
        Finding(
            "sim_box",
            row.day,
            {
                "voice_calls": row.voice_calls,
                "incoming_calls": row.incoming_calls,
                "max_incoming_pct": p["max_incoming_pct"],
            },
            line_id=row.line_id,
        )
        for row in rows
        if row.incoming_calls * 100 <= p["max_incoming_pct"] * row.voice_calls
    ]


def new_line_bursts(session: Session, p: dict[str, int], first: date, last: date) -> list[Finding]:
    """The new_line_burst findings of lines first used from `first` to `last`."""
    # Early usage spans at most two local days: start a day sooner so a line
    # whose first day is `first` is summed whole.
    rows = early_usage(session, since=first - timedelta(days=1))
    firsts = first_usage_days(session, line_ids=[line_id for line_id, *_ in rows])
    found = []
    for line_id, _day, data_kb, voice_s in rows:
        day = firsts[line_id]
        if not first <= day <= last:
            continue
        if data_kb > p["max_data_kb"] or voice_s > p["max_voice_s"]:
            figures = {
                "early_data_kb": data_kb,
                "early_voice_s": voice_s,
                "max_data_kb": p["max_data_kb"],
                "max_voice_s": p["max_voice_s"],
            }
            found.append(Finding("new_line_burst", day, figures, line_id=line_id))
    return found


def voucher_failures(
    session: Session, p: dict[str, int], first: date, last: date, *, now: datetime, zone: ZoneInfo
) -> list[Finding]:
    """The voucher_failures findings on the days from `first` to `last` (see the module)."""
    window = timedelta(minutes=p["window_minutes"])
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone) - window
    attempts: dict[int, list[datetime]] = defaultdict(list)
    for customer_id, at in failed_voucher_attempts(session, since=since, until=now):
        attempts[customer_id].append(at)
    found: dict[tuple[int, date], Finding] = {}
    for customer_id, times in attempts.items():
        start = 0
        for end, at in enumerate(times):
            while times[start] <= at - window:
                start += 1
            count = end - start + 1
            day = at.astimezone(zone).date()
            if count >= p["min_failures"] and first <= day <= last:
                found.setdefault(
                    (customer_id, day),
                    Finding(
                        "voucher_failures",
                        day,
                        {
                            "failures": count,
                            "window_minutes": p["window_minutes"],
                            "first_at": times[start].isoformat(),
                            "last_at": at.isoformat(),
                        },
                        customer_id=customer_id,
                    ),
                )
    return list(found.values())


def find_all(
    session: Session, rules: list[RuleSettings], *, now: datetime, timezone: str
) -> list[Finding]:
    """Every finding of the enabled rules over the scanned days."""
    zone = ZoneInfo(timezone)
    last = now.astimezone(zone).date()
    first = last - timedelta(days=SCAN_DAYS)
    found: list[Finding] = []
    for settings in rules:
        if not settings.enabled:
            continue
        p = settings.params
        if settings.rule == "usage_spike":
            found.extend(usage_spikes(session, p, first, last))
        elif settings.rule == "sim_box":
            found.extend(sim_boxes(session, p, first, last))
        elif settings.rule == "new_line_burst":
            found.extend(new_line_bursts(session, p, first, last))
        else:
            found.extend(voucher_failures(session, p, first, last, now=now, zone=zone))
    return found


def _subject(finding: Finding) -> str:
    if finding.line_id is not None:
        return f"line:{finding.line_id}"
    return f"customer:{finding.customer_id}"


def _raise_once(
    session: Session, finding: Finding, customer_id: int, now: datetime
) -> FraudAlert | None:
    """Insert the alert; None when (rule, subject, day) has one already."""
    alert = FraudAlert(
        rule=finding.rule,
        subject=_subject(finding),
        line_id=finding.line_id,
        customer_id=customer_id,
        day=finding.day,
        figures=finding.figures,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return None
    return alert


def scan_fraud(session: Session, *, now: datetime, timezone: str) -> ScanReport:
    """Run every enabled rule and raise its new alerts, once each; suspend where switched on.

    Idempotent: a second scan at the same `now` raises nothing. Each new
    alert is audited; an automatic suspension is audited by the line's
    lifecycle too.
    """
    rules = list_rule_settings(session)
    auto = {r.rule for r in rules if r.enabled and r.auto_suspend}
    findings = find_all(session, rules, now=now, timezone=timezone)
    existing = {
        (a.rule, a.subject, a.day)
        for a in session.exec(
            select(FraudAlert).where(
                col(FraudAlert.day) >= min((f.day for f in findings), default=now.date())
            )
        )
    }
    line_ids = sorted({f.line_id for f in findings if f.line_id is not None})
    owners = (
        {
            line.id: line.customer_id
            for line in session.exec(select(Line).where(col(Line.id).in_(line_ids)))
        }
        if line_ids
        else {}
    )
    report = ScanReport(raised={r.rule: 0 for r in rules})
    for finding in findings:
        if (finding.rule, _subject(finding), finding.day) in existing:
            continue
        customer_id = (
            owners[finding.line_id] if finding.line_id is not None else finding.customer_id
        )
        assert customer_id is not None
        alert = _raise_once(session, finding, customer_id, now)
        if alert is None:
            continue
        assert alert.id is not None
        record_audit(
            session,
            actor=SCAN_ACTOR,
            action="fraud_alert.raise",
            now=now,
            target_type="fraud_alert",
            target_id=alert.id,
            details={"rule": alert.rule, "subject": alert.subject, "day": alert.day.isoformat()},
        )
        report.raised[alert.rule] += 1
        report.alert_ids.append(alert.id)
        if alert.rule in auto and suspend_for_alert(
            session, alert=alert, actor=SCAN_ACTOR, now=now
        ):
            report.suspended += 1
    return report
