"""`pipeline sim`: serve the simulator until Ctrl-C or SIGTERM; registered by pipeline.cli.

The base URL is the first line of stdout (flushed), so scripts can start it with port 0 and
read where it listens. Option names for faults are a contract with scripts outside the project.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import wire
from ..argtypes import number, positive_int, probability, seconds
from ..errors import UsageError
from . import config as cfglib


def _gen_time(text: str) -> tuple[float, float]:
    """SECONDS or MIN:MAX."""
    lo, sep, hi = text.partition(":")
    low = seconds(lo)
    high = seconds(hi) if sep else low
    if high < low:
        raise argparse.ArgumentTypeError(f"MIN:MAX needs MIN <= MAX, got {text}")
    return (low, high)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pipeline sim` and its options to the main parser."""
    p = sub.add_parser(
        "sim", help="run the offline simulator of the RunComfy queue API",
        description="Serve a local simulator of RunComfy's Model API queue. Prints its base URL "
                    "first, then serves until Ctrl-C. Its videos are placeholders.")
    d = cfglib.SimConfig()
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--capacity", type=positive_int, default=d.capacity,
                   help="requests in progress at once (default %(default)s)")
    p.add_argument("--gen-time", type=_gen_time, default=d.gen_time, metavar="SECONDS|MIN:MAX",
                   help="generation time, uniform in [MIN, MAX] (default 0.2:0.5)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of every random choice")
    p.add_argument("--token", default=None,
                   help="accept only this bearer token (default: any non-empty one)")
    p.add_argument("--price", type=float, default=d.price_usd, metavar="USD",
                   help="base_price_usd of the catalog entry (default %(default)s)")
    p.add_argument("--price-unit", choices=cfglib.PRICE_UNITS, default=d.price_unit)
    p.add_argument("--cost-factor", type=number(0, 1000), default=d.cost_factor, metavar="F",
                   help="bill each result F times the catalog price (default %(default)s: "
                        "as the catalog says)")
    p.add_argument("--balance", type=number(0, 1e9), default=None, metavar="USD",
                   help="the account's wallet: lowered by what is billed; submits it cannot "
                        "pay are refused with insufficient balance (error_code 400002); served "
                        f"at {wire.BALANCE_PATH} (default: unlimited)")
    g = p.add_argument_group("faults (probabilities from 0 to 1, reproducible under --seed)")
    for name, text in cfglib.FAULT_RATES.items():
        g.add_argument("--" + name.replace("_", "-"), type=probability, default=0.0,
                       metavar="P", help=text)
    g.add_argument("--retry-after", type=seconds, default=d.retry_after, metavar="SECONDS",
                   help="Retry-After of each 429 (default %(default)s)")
    g.add_argument("--slow-delay", type=seconds, default=d.slow_delay, metavar="SECONDS",
                   help="delay of a slow answer (default %(default)s)")
    g.add_argument("--download-outage", type=seconds, default=d.download_outage,
                   metavar="SECONDS", help="how long a faulty output 404s (default %(default)s)")
    v = p.add_argument_group("variants (what the public docs leave open)")
    v.add_argument("--result-word", choices=cfglib.RESULT_SUCCESS_WORDS,
                   default=d.result_success_word, help="/result status on success")
    v.add_argument("--failure-status-word", choices=cfglib.FAILURE_STATUS_WORDS,
                   default=d.status_on_failure, help="/status word for a failed generation")
    v.add_argument("--output-key", choices=cfglib.OUTPUT_KEYS, default=d.output_key,
                   help=f"output.{wire.OUTPUT_VIDEO} (a URL) or output.{wire.OUTPUT_VIDEOS} "
                        "(a list)")
    v.add_argument("--auth-failure-status", type=int, choices=cfglib.AUTH_FAILURE_STATUSES,
                   default=d.auth_failure_status,
                   help=f"HTTP status of a bad token (body error_code {wire.ERROR_CODE_ACCOUNT})")
    v.add_argument("--error-code-quirk", type=probability, nargs="?", const=1.0, default=0.0,
                   metavar="P", help="answer errors with HTTP 200 and error_code in the body "
                                     "(all of them, or the given share)")
    v.add_argument("--refuse-data-uris", action="store_true",
                   help="answer 400 naming the field when an input is a data: URI")
    v.add_argument("--status-success-word", choices=cfglib.STATUS_SUCCESS_WORDS,
                   default=d.status_success_word, help="/status word for a succeeded request")
    v.add_argument("--cancelled-status-word", choices=cfglib.CANCELLED_WORDS,
                   default=d.cancelled_word,
                   help="/status and /result word for a cancelled request")
    m = p.add_argument_group("models")
    m.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="also serve the models in DIR (laid out like a project's models/ "
                        "folder: <model id>/input.schema.json, price.json, output.schema.json); "
                        "repeatable, looked in first, in order; the models/ folder of the "
                        "current project and the bundled models are always served")
    p.set_defaults(func=run)


def models_dirs(given: list[str]) -> tuple[str, ...]:
    """The --models folders (each must exist), then the current project's models/ folder."""
    from ..models.catalogue import project_models
    from ..project import root_at

    for folder in given:
        if not Path(folder).is_dir():
            raise UsageError(f"pipeline sim: --models {folder}: no such folder")
    return (*given, str(project_models(root_at(Path.cwd()))))


def config_from_args(args: argparse.Namespace) -> cfglib.SimConfig:
    """The SimConfig the options describe; a bad combination is a UsageError."""
    values: dict[str, Any] = {name: getattr(args, name) for name in cfglib.FAULT_RATES}
    dirs = models_dirs(getattr(args, "models", []))
    try:
        return cfglib.SimConfig(
            capacity=args.capacity, gen_time=args.gen_time, seed=args.seed,
            token=args.token or None, price_usd=args.price, price_unit=args.price_unit,
            cost_factor=args.cost_factor, balance=getattr(args, "balance", None),
            result_success_word=args.result_word, status_on_failure=args.failure_status_word,
            output_key=args.output_key, auth_failure_status=args.auth_failure_status,
            error_code_quirk=args.error_code_quirk, accept_data_uris=not args.refuse_data_uris,
            retry_after=args.retry_after, slow_delay=args.slow_delay,
            download_outage=args.download_outage, models_dirs=dirs,
            status_success_word=args.status_success_word,
            cancelled_word=args.cancelled_status_word, **values)
    except ValueError as exc:
        raise UsageError(f"pipeline sim: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT (exit 130) or SIGTERM (exit 0)."""
    from ..serving import until_stopped
    from .server import Simulator

    config = config_from_args(args)
    sim = Simulator(config, host=args.host, port=args.port)
    try:
        sim.start()
    except OSError as exc:
        raise UsageError(f"pipeline sim: cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}; pick another --port") from exc
    with until_stopped() as wait:
        try:
            print(sim.base_url, flush=True)
            models = len(sim.app.state.catalog.ids())
            print(f"pipeline sim: serving RunComfy's queue API on {sim.base_url} "
                  f"(capacity {config.capacity}, seed {config.seed}, {models} models); Ctrl-C "
                  "to stop", file=sys.stderr, flush=True)
            return wait()
        finally:
            sim.stop()
