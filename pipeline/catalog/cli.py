"""`pipeline models list | add | check`: registered by pipeline.cli; the work is pipeline.catalog.

The project is the one of the current folder (the nearest folder at or above it holding
`.git`, as for a manifest: pipeline.job.folder), or `--project DIR`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import wire
from ..errors import MissingToken

OFFLINE_HINT = ("to add models from the offline simulator, start `pipeline sim --models DIR` "
                "and point RUNCOMFY_BASE_URL at the address it prints (any token works)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pipeline models` and its actions to the main parser."""
    p = sub.add_parser("models", help="the models a project can use: list them, add them from "
                                      "RunComfy's catalog, check them for drift",
                       description="A project's models live in models/<model id>/ under its "
                                   "root (checked into git); the bundled ones come after.")
    actions = p.add_subparsers(dest="models_command", metavar="ACTION")
    actions.required = True

    q = actions.add_parser("list", help="the project's and the bundled models (source, schema "
                                        "hash, kind, price)")
    q.add_argument("--catalog", action="store_true",
                   help="list RunComfy's catalog instead (asks the API, free of charge)")
    q.add_argument("--search", metavar="TEXT", help="with --catalog: ids containing TEXT")
    _common(q, json_option=True)
    q.set_defaults(func=cmd_list)

    q = actions.add_parser("add", help="fetch catalog entries into the project's models folder")
    q.add_argument("model_ids", nargs="+", metavar="MODEL_ID")
    _common(q)
    q.set_defaults(func=cmd_add)

    q = actions.add_parser("check", help="ask the live catalog whether the token works, which "
                                         "price it states and whether each price or schema drifted")
    q.add_argument("model_ids", nargs="*", metavar="MODEL_ID",
                   help="default: every model of the project and the bundled ones")
    _common(q, json_option=True)
    q.set_defaults(func=cmd_check)


def _common(p: argparse.ArgumentParser, json_option: bool = False) -> None:
    p.add_argument("--project", type=Path, metavar="DIR",
                   help="the project root (default: the nearest folder at or above the "
                        "current one that holds .git, else the current folder)")
    if json_option:
        p.add_argument("--json", action="store_true", help="print JSON")


def _root(args: argparse.Namespace) -> Path:
    from ..project import root_at

    return Path(args.project).resolve() if args.project else root_at(Path.cwd())


def _client() -> Any:
    from ..client import RunComfyClient

    try:
        return RunComfyClient.from_env(retry_attempts=3, retry_timeout=20.0, timeout=15.0)
    except MissingToken as exc:
        raise MissingToken(f"{exc}; {OFFLINE_HINT}") from None


def cmd_list(args: argparse.Namespace) -> int:
    from .remote import list_lines, list_models

    if args.catalog:
        import asyncio

        async def ask() -> list:
            async with _client() as client:
                return await client.models(include_schema=False, search=args.search)
        entries = asyncio.run(ask())
        rows = [{"id": e.model_id or e.raw.get("id"), "kind": e.raw.get(wire.CATALOG_KIND),
                 "price_usd": e.price_usd, "price_unit": e.price_unit, "note": e.note}
                for e in entries]
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            for r in rows:
                price = f"${r['price_usd']:g} per {r['price_unit']}" \
                    if r["price_usd"] is not None and r["price_unit"] else "price unknown"
                print(f"{r['id']}  {r['kind'] or ''}  {price}")
            print(f"{len(rows)} models in the catalog", file=sys.stderr)
        return 0
    models = list_models(_root(args))
    if args.json:
        print(json.dumps(models, indent=2, ensure_ascii=False))
    else:
        print("\n".join(list_lines(models)))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    import asyncio

    from .remote import add_models

    async def go() -> Any:
        async with _client() as client:
            return await add_models(client, args.model_ids, _root(args))
    outcome = asyncio.run(go())
    for line, fact in zip(outcome.lines, outcome.facts, strict=True):
        print(line, file=sys.stdout if fact["ok"] else sys.stderr)
    return outcome.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    import asyncio

    from .remote import check_models

    async def go() -> Any:
        async with _client() as client:
            return await check_models(client, args.model_ids, _root(args))
    outcome = asyncio.run(go())
    if args.json:
        print(json.dumps({"ok": outcome.exit_code == 0, "facts": outcome.facts}, indent=2,
                         ensure_ascii=False))
    else:
        for line in outcome.lines:
            print(line)
    return outcome.exit_code
