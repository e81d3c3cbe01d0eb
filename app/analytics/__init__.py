"""Figures about the business for staff: the dashboard (DESIGN §2, floor 6).

The figures only read: every figure is counted from the rows
themselves, set-based, never estimated or cached; days and months are those
of `TIMEZONE` (app/analytics/calendar.py). `dashboard` holds the counts of
the tiles, `lines` lines and their activations and terminations per day,
`revenue` revenue by kind and per plan against the wholesale cost, `arpu`
revenue per active line, `liability` the prepaid liability beside what an
exit now would owe. The fraud rules are the one writer here: `fraud` runs
them and raises alerts, `fraud_alerts` works them, `fraud_rules` holds their
settings (tables in `models`).
"""
