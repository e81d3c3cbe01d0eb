"""Retail charging (DESIGN §9): line periods and allowances, add-ons, renewals.

periods.py          periods and their allowances
addons.py           add-ons bought into the current period
renewals.py         the renewal run (job and command) over due lines, in batches
renewal_batch.py    one batch: lock, decide, post, write (set-based)
line_renewal.py     renewing one line now (self-care's Renew now)
unpaid_lines.py     suspension, resumption and termination of unpaid lines
renewal_notices.py  the notices a renewal sends
renewal_terms.py    what a renewal needs to know of plans and lines
summary.py          what `mvno line show` tells
usage_days.py       per-line daily usage summed by rating; readers for the fraud rules
handlers.py         first period on activation; renewal after a credit
"""
