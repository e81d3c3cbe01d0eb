"""Renewals at period end (DESIGN §9).

Rules:

* **Due.** A line `active` or `suspended` whose `period_end <= now` is due,
  except a suspended line whose renewal already went unpaid
  (`renewal_failed_at` set): it waits for a credit or for termination.
* **Renewal.** The next period is on `next_plan_id` when one is set (then
  cleared, and the switch audited), else on the line's plan; a retired plan
  keeps its terms. With auto-renew on and the prepaid balance covering the
  price, the price is debited (journal entry kind `renewal`, to
  `revenue_plans`, idempotency key `renewal:<line id>:<old period end ISO>`,
  so a rerun never posts a period twice) and the next period opens exactly
  at the old end: `end = start + validity_days × 24 h`.
* **Catch-up.** While the new end is still not after `now` the line renews
  again, each period its own entry, so a run far ahead (`--now`) renews
  period after period while the money lasts. The lines of one batch are
  renewed in the order of their period ends, so two lines of one customer
  share the balance in time order.
* **Unpaid.** Otherwise (auto-renew off, or the balance short) the line is
  suspended through the lifecycle (reason "renewal unpaid", provisioning
  `suspend`) as of the end of its last paid period, and `renewal_failed_at`
  records that instant. A line a member of staff resumed while unpaid is
  due again; its next period, paid or not, starts at `now`, not at the old
  end: the customer does not pay for the time the line was barred.
* **Suspended by staff.** A line suspended by staff for another reason
  (fraud, a lost phone) keeps renewing while paid: a suspension bars
  service but the number and its fees go on. When such a line's renewal
  goes unpaid it is marked like the others but stays the staff's
  suspension: a credit does not lift it. The suspension is the renewal's
  own exactly while `renewal_failed_at == status_changed_at` (every staff
  suspend or resume moves `status_changed_at`).
* **Credit.** A credit during a renewal suspension renews and resumes the
  line (`renew_suspended_lines`, run by the `CustomerCredited` handler in
  app/charging/handlers.py, in the same transaction as the credit): the new
  period starts at the credit, oldest suspension first, while the balance
  covers; lines with auto-renew off wait for a manual `renew_now`. The job
  also resumes any such line whose customer's balance covers it now, in case
  money arrived another way.
* **Termination.** A suspended line whose renewal has been unpaid for
  `UNPAID_DAYS_BEFORE_TERMINATION` (90) days — its failed renewal and its
  current suspension both at least that old — is terminated and its number
  quarantined for `NUMBER_QUARANTINE_DAYS`. A line suspended by staff with
  paid periods is never terminated by this job.
* **Notices** (outbox, one per period through their dedupe keys):
  `renewal` (the latest period renewed in a run), `suspension` (renewal
  unpaid), `renewal_failed` (unpaid while already suspended by staff),
  `resumed`, `termination`, and `low_balance` after a renewal when the
  balance will not cover the next one.

Where it lives: this module is the job (`run_renewals`);
app/charging/renewal_batch.py one batch of due lines, set-based;
app/charging/unpaid_lines.py suspension, resumption and termination;
app/charging/line_renewal.py one line at a time (`renew_now`, a credit's
renewal); app/charging/renewal_notices.py the notices and their data;
app/charging/renewal_terms.py the key, entry kind, reasons and report they
share.

Speed (bench/bench_renewals.py): due lines are taken in batches, one
transaction each, `FOR UPDATE SKIP LOCKED` on PostgreSQL in id order (so two
runs never take the same line and never wait for each other); plans,
accounts and balances are read set-based, the entries posted by
`post_entries`, and periods, line updates, audit records (one per renewal)
and notices written with one multi-row statement each. Only the rarer
suspensions and terminations go through the lifecycle line by line.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlmodel import Session

from app.charging.renewal_batch import renew_batch
from app.charging.renewal_terms import PlanTerms, RenewalReport, unit
from app.charging.unpaid_lines import resume_covered_lines, terminate_unpaid_lines
from app.core.audit import Actor
from app.core.db import Database

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_WORKERS", "run_renewals"]

DEFAULT_BATCH_SIZE = 1000
# Parallel batch takers on PostgreSQL (the CLI and the job): the work is mostly
# the server's, so a second transaction in flight uses the time one waits.
DEFAULT_WORKERS = 2


def run_renewals(
    target: Database | Session,
    *,
    now: datetime,
    quarantine_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    workers: int = 1,
    actor: Actor | None = None,
) -> RenewalReport:
    """Renew, suspend, resume and terminate every line whose time has come (module rules).

    With a `Database`, each batch of `batch_size` due lines is its own
    transaction (and so is each batch of resumptions and terminations);
    with a `Session`, everything happens in the caller's transaction.
    `limit` caps the due lines (and separately the terminations) handled in
    this run. Lines another transaction holds are skipped, left for the next
    run. A rerun with the same `now` finds nothing to do. On PostgreSQL,
    `workers` threads take batches at once (each its own connection and
    transactions; not with `limit`, nor on a Database bound to one
    connection); the resumptions and terminations follow in one thread.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    if batch_size < 1 or workers < 1 or (limit is not None and limit < 1):
        raise ValueError("batch_size, workers and limit must be positive")
    actor = actor or Actor.system("renewals")
    report = RenewalReport(now=now)
    parallel = (
        isinstance(target, Database)
        and not target.is_sqlite
        and not target.is_bound
        and limit is None
        and workers > 1
    )
    if parallel:
        with ThreadPoolExecutor(workers, thread_name_prefix="renewals") as pool:
            for part in pool.map(
                lambda _: _renew_due(target, now=now, actor=actor, batch_size=batch_size),
                range(workers),
            ):
                report.add(part)
    else:
        report.add(_renew_due(target, now=now, actor=actor, batch_size=batch_size, limit=limit))
    report.resumed += resume_covered_lines(target, now=now, actor=actor)
    report.terminated += terminate_unpaid_lines(
        target, now=now, actor=actor, quarantine_days=quarantine_days, limit=limit
    )
    return report


def _renew_due(
    target: Database | Session,
    *,
    now: datetime,
    actor: Actor,
    batch_size: int,
    limit: int | None = None,
) -> RenewalReport:
    """Renew due lines batch after batch (id order) until none is left or `limit` is reached.

    Several of these may run at once on PostgreSQL: each takes the lines no
    other holds (SKIP LOCKED), and a line it renews or suspends is no longer
    due, so each line is handled once.
    """
    report = RenewalReport(now=now)
    terms: dict[int, PlanTerms] = {}
    after = 0
    while limit is None or report.lines_seen < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.lines_seen)
        with unit(target) as session:
            batch, last_id = renew_batch(
                session, after_id=after, size=size, now=now, actor=actor, terms=terms
            )
        report.add(batch)
        if batch.lines_seen < size:
            break
        after = last_id
    return report
