"""What is bought: hosts and rate cards; settlement and reconciliation arithmetic (DESIGN §7).

Modules: `models` (hosts, rate cards, settlement runs and disputes),
`services` (hosts and rate cards), `usage_settings` (a host's usage-file
columns and reconciliation tolerances), `settlement` (a month's rows from
quantities handed in: the counting is app/usage's), `reconcile` (the host's
invoice against them), `runs` (kept runs and their disputes).
"""
