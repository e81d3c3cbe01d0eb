"""Mediation: the host's usage files in, records and rejects, the inbox (DESIGN §7).

Modules:

* `models` — `UsageFile` (one import, keyed by host and SHA-256),
  `UsageRecord` (one charged record; partitioned by month on PostgreSQL),
  `UsageReject` (a row that could not be used, kept for reprocessing).
* `reading` — the file read with DuckDB: columns mapped, every row checked,
  a reason for each that cannot be used.
* `importer` — `import_usage_file`: read, drop duplicates, hand the records
  to charging's rating (`app.charging.rating`), store records and rejects,
  all in one transaction, so a crash leaves nothing half-charged.
* `store` — bulk writes: psycopg `COPY` on PostgreSQL, monthly partitions
  created ahead; multi-row inserts on SQLite.
* `rejects` — listing rejects and reprocessing them once the cause is fixed.
* `inbox` — files dropped in `instance/inbox/<HOST>/`, moved to `done/` or
  `failed/`; `jobs` — the scheduler jobs (inbox, monthly settlement).
* `settlement` — the counts settlement needs (usage per day, lines, numbers),
  handed to `wholesale.settlement`; `reconciliation` — the host's invoice
  against it, each difference recorded as a dispute (`wholesale.models`).
* `queries` — usage per line and per day for the console, API and charts.
"""
