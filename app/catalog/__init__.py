"""The catalog file loader: hosts, rate cards, number blocks, plans, add-ons (DESIGN §13).

The format is fixed by ``examples/catalog.toml``: arrays of tables
``[[hosts]]``, ``[[rate_cards]]`` (with a nested ``host_best_retail`` table),
``[[number_blocks]]``, ``[[plans]]`` and optionally ``[[addons]]``. Prices
are decimal strings in currency units: customer amounts hold at most 2
decimals, wholesale prices at most 6; more precision is a problem, never
rounded away.

Rules:

* **Everything is checked first.** Every problem of every row is collected
  as a `Problem(file, table, key, reason)`; unknown keys are problems too.
  A file with any problem loads nothing (`CatalogInvalid`). What no row can
  be blamed for refuses the file as a whole with one message
  (`CatalogRefused`): a file over 4 MiB or nested too deeply to parse, a
  file with nothing to load, and a host given another currency than the one
  stored (its prices and balances are held in that currency).
* **Then it is applied in dependency order** (hosts, rate cards, number
  blocks, plans, add-ons) through the services, so their rules and audit
  records apply. A refusal by a service while applying (a race, a rule the
  checks above could not see) is also reported as a problem, and the whole
  load is rolled back: it is atomic.
* **Idempotent.** Rows are keyed by code (hosts, plans, add-ons), by (host,
  effective_from) for rate cards and by (host, first, last) for number
  blocks. Loading the same file again changes nothing and writes only the
  one ``catalog.load`` audit summary every load writes.
* **Plans.** A plan's host is its ``host`` key, else the only host in the file
  and the database. A new code is created; changed terms go through
  `update_plan` (a published plan gets a new version); ``status =
  "published"`` then publishes it — without a margin override, so a negative
  margin is a problem; ``status = "retired"`` retires the published version
  (its terms in the file are not loaded).
"""

from app.catalog.errors import CatalogInvalid, CatalogRefused, Problem
from app.catalog.loader import CatalogReport, load_catalog

__all__ = ["CatalogInvalid", "CatalogRefused", "CatalogReport", "Problem", "load_catalog"]
