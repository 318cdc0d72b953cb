"""The team ledger's tables, as a list of numbered migrations (the newest last).

A database is brought up to date by running, in one transaction each, the migrations past the
version it records in `pipeline_ledger_meta`; a database newer than this code is refused.

- `account`: one row, the account's limits and the running totals of its current budget period
  (kept beside the holds in the same transactions, so that reserving is one conditional UPDATE).
- `holds`: one row per attempt any runner ever made while naming this ledger, keyed by
  `job uid:cell:attempt`: `live` (on the server, or maybe: it holds a slot and its estimate),
  `billed` (the server ran it: its cost, else its estimate, is spent) or `released` (never ran:
  not accepted, cancelled while queued, lost, or given up after an unknown submit).
- `waiters` (2): the runners waiting for a slot, in the order they began to wait. A free slot
  goes to the runner first in line (first come, first served per slot); a runner that gets one
  leaves the line, and joins it again at its end if it still waits. A runner refreshes `seen`
  every time it asks (at least every few seconds while it waits), so the row of one that died
  is passed over and deleted.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the account and its holds
    """
    CREATE TABLE account (
        id integer PRIMARY KEY CHECK (id = 1),
        concurrency integer NOT NULL CHECK (concurrency >= 1),
        budget_micros bigint CHECK (budget_micros IS NULL OR budget_micros >= 0),
        period text NOT NULL DEFAULT 'total' CHECK (period IN ('day', 'total')),
        period_start date,                       -- NULL for 'total'; the UTC day for 'day'
        live integer NOT NULL DEFAULT 0,          -- holds in state 'live'
        committed_micros bigint NOT NULL DEFAULT 0,
        spent_micros bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE holds (
        key text PRIMARY KEY,                     -- job uid:cell:attempt
        job text NOT NULL,
        job_uid text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        cell text NOT NULL,
        attempt integer NOT NULL,
        base_url text NOT NULL,
        request_id text,
        state text NOT NULL CHECK (state IN ('live', 'billed', 'released')),
        estimate_micros bigint NOT NULL DEFAULT 0,
        cost_micros bigint,                        -- the server's figure, when it gave one
        period date,                               -- the budget period it counts in
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX holds_live ON holds (job_uid) WHERE state = 'live';
    CREATE INDEX holds_request ON holds (request_id) WHERE request_id IS NOT NULL;
    """,
    # 2: the runners waiting for a slot, first come first served
    """
    CREATE TABLE waiters (
        runner text PRIMARY KEY,                  -- job uid:host:pid
        job text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        since timestamptz NOT NULL DEFAULT clock_timestamp(),  -- its place in the line
        seen timestamptz NOT NULL DEFAULT clock_timestamp()    -- it last asked
    );
    """,
]

VERSION = len(MIGRATIONS)

META = """
CREATE TABLE IF NOT EXISTS pipeline_ledger_meta (
    key text PRIMARY KEY,
    value text NOT NULL
)
"""
