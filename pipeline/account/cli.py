"""`pipeline account init|set|status|sweep|release`: registered by pipeline.cli, thin over
`admin`."""

from __future__ import annotations

import argparse
import json
import os

from ..argtypes import positive_int
from ..errors import UsageError
from . import KEEP, LEDGER_ENV_VAR, PERIODS


def ledger_url(given: str | None) -> str:
    """The team ledger's URL: --ledger, else PIPELINE_LEDGER; a UsageError when neither."""
    url = (given or os.environ.get(LEDGER_ENV_VAR, "")).strip()
    if not url:
        raise UsageError(f"no team ledger: set {LEDGER_ENV_VAR}=postgresql://USER@HOST/DB "
                         "or pass --ledger URL")
    return url


def _budget(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        value = float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount of USD (or `none`): {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more USD, got {text}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("account", help="the team ledger: an account's slots and budget shared "
                       "by every runner (PostgreSQL)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        v = verbs.add_parser(name, help=help_text)
        v.add_argument("--ledger", metavar="URL",
                       help=f"postgresql:// URL of the team ledger (default: ${LEDGER_ENV_VAR})")
        v.set_defaults(func=cmd_account, account_verb=name)
        return v

    for name, help_text in (("init", "create the ledger's tables and its account"),
                            ("set", "change the account's concurrency, budget or period")):
        v = verb(name, help_text)
        v.add_argument("--concurrency", type=positive_int,
                       help="requests live at once, all runners")
        v.add_argument("--budget", type=_budget, default=KEEP, metavar="USD",
                       help="what the team may commit in a period (`none`: no budget)")
        v.add_argument("--period", choices=PERIODS,
                       help="day: the budget is per UTC day; total: for all time (default)")
        v.add_argument("--json", action="store_true", help="print the status as JSON")
    verb("status", "live requests, money and who holds slots").add_argument(
        "--json", action="store_true", help="print the status as JSON")
    verb("sweep", "ask the API how live requests ended and free their slots (free of charge)")
    v = verb("release", "free the slots of a job's submits of unknown outcome, once the "
                        "RunComfy dashboard shows they are not running")
    v.add_argument("job", metavar="JOB", help="the job's name (as `account status` lists it)")
    v.add_argument("--cell", action="append", default=[], metavar="ID",
                   help="only this cell (an id or a unique prefix; repeat)")


def cmd_account(args: argparse.Namespace) -> int:
    from . import admin  # the ledger's store (asyncio, psycopg) only when a verb runs

    url = ledger_url(args.ledger)
    verb = args.account_verb
    if verb == "release":
        for line in admin.release(url, args.job, args.cell):
            print(line)
        return 0
    if verb == "sweep":
        from ..client import RunComfyClient

        for line in admin.sweep(url, RunComfyClient.from_env()):
            print(line)
        return 0
    if verb == "init":
        st = admin.init(url, args.concurrency, args.budget, args.period)
    elif verb == "set":
        if args.concurrency is None and args.budget is KEEP and args.period is None:
            raise UsageError("pipeline account set: give --concurrency, --budget or --period")
        st = admin.configure(url, concurrency=args.concurrency, budget=args.budget,
                             period=args.period)
    else:
        st = admin.status(url)
    print(json.dumps(st, indent=2) if args.json else admin.status_text(st))
    return 0
