"""The `pipeline` command: a thin layer over the library; every user error ends in one line."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Sequence

from .errors import PipelineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Declarative, resumable batch runs against queue-style generative-media APIs.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log more detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check manifests and every request they expand to")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("--offline", action="store_true",
                   help="do not fetch remote images (their checks are skipped with a warning)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="show the cells a manifest expands to, with cost and duration")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--offline", action="store_true",
                   help="do not fetch remote images (their checks are skipped with a warning)")
    p.set_defaults(func=cmd_plan)

    from .sim import cli as sim_cli  # the simulator registers its own options

    sim_cli.register(sub)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from .plan import validate_files

    report = validate_files(args.manifests, fetch_remote=not args.offline)
    for line in report.lines():
        print(line, file=sys.stderr if report.failed else sys.stdout)
    return 2 if report.failed else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan import build_plan, plan_json, plan_table

    plan = build_plan(args.manifest, fetch_remote=not args.offline)
    if args.json:
        import json

        print(json.dumps(plan_json(plan), indent=2, ensure_ascii=False))
    else:
        print(plan_table(plan))
    for warning in plan.warnings:
        print(str(warning), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except PipelineError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line by default, the traceback on request
        if args.verbose:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (a bug; rerun with --verbose and "
              "report it)", file=sys.stderr)
        return 3
