"""Market exit and handover; single-subscriber termination and port-out (DESIGN §12).

The floor above everything the reseller runs: it reads lines, periods,
balances and payments through their packages' public functions and hands
the rest of the platform two policies when an exit is announced — the
prepayment cap (app/ledger/cap.py) and the horizon past which nothing is
sold or renewed (app/charging/horizon.py) — from `handlers.py`.

* `schedule.py` — plan, announce, cancel; the exit instant.
* `choices.py` — each subscriber's choice: transfer to the host or terminate.
* `owed.py` — the refund arithmetic of §12, for the preview, the execution
  and a single line's termination or port-out.
* `execute.py` — the execution, in one transaction, with its invariant.
* `files.py` — the regulator report, handover, refund list and exit report.
* `termination.py` — one subscriber's termination or port-out with refund.
"""
