"""The account as a shared resource: a team ledger on PostgreSQL that every runner naming it
(PIPELINE_LEDGER or --ledger) shares: at most `concurrency` requests live across all of them,
and a team budget their committed spend never crosses.

`store` holds the tables' operations (`TeamLedger`: acquire, mirror, live holds, waits),
`holds` the values it keeps and answers (`Hold`, `Full`, `OverBudget`), `connecting` how a
connection is opened and its failures said, `schema` the tables' numbered migrations, `admin`
what `pipeline account init|set|status|sweep` do.
"""

from __future__ import annotations

from typing import Any

LEDGER_ENV_VAR = "PIPELINE_LEDGER"
PERIODS = ("day", "total")  # of `account init|set --period` (here, so the parser needs no admin)
KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP"})()  # leave as it is
