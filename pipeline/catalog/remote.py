"""The project's models and RunComfy's catalog: what `pipeline models list | add | check` do.

- `list_models(root)`: every model a manifest of the project can name (the project's own
  first, then the bundled ones), with where it is from, its schema hash, kind and price.
- `add_models(client, ids, root)`: fetch each catalog entry (`GET /v1/models/{id}`) and write
  it into the project's models folder, `models/<model id>/`, to be checked into git: the input
  schema unchanged (`input.schema.json`), the output schema when the entry has one, the price
  as a price sheet (`price.json`) and where it came from (`model.json`: source URL, fetch time).
- `check_models(client, ids, root)`: ask the live catalog, free of charge, whether the token
  works, which price it states and whether each price and schema still match the ones the
  project has; one fact a line, and drift is a non-zero exit (a drifted schema found before a big
  sweep, not after it).

Library functions: they return lines and outcomes; the CLI prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, text, wire
from ..durable import write_atomic
from ..errors import AuthError, ClientError, ModelNotFound, TransportError
from ..job.price import describe
from ..jsonio import canonical
from ..models import cost
from ..models.catalogue import (
    BUNDLED,
    META,
    META_FORMAT,
    OUTPUT_SCHEMA,
    PRICE,
    SCHEMA,
    Model,
    all_models,
    load_model,
    project_models,
    valid_model_id,
)


def list_models(root: Path) -> list[dict[str, Any]]:
    """Every model of the project and the bundled ones, as `pipeline models list` shows them."""
    out = []
    for model in all_models(root):
        out.append({"id": model.id, "source": model.source, "folder": str(model.folder),
                    "kind": model.kind, "schema_sha256": model.schema_sha256,
                    "price": model.price, "price_text": describe(model.price),
                    "fetched_at": model.meta.get("fetched_at")})
    return out


def list_lines(models: list[dict[str, Any]]) -> list[str]:
    if not models:
        return ["no models"]
    width = max(len(m["id"]) for m in models)
    return [f"{m['id']:<{width}}  {m['source']:<7}  {m['kind']:<5}  "
            f"sha256 {m['schema_sha256'][:12]}  {m['price_text']}" for m in models]


@dataclass
class Outcome:
    """What a `models add` or `models check` found: its lines, and whether all is well."""

    lines: list[str] = field(default_factory=list)
    failed: bool = False  # a model could not be added, or has drifted
    auth_failed: bool = False
    facts: list[dict[str, Any]] = field(default_factory=list)  # for --json

    def say(self, model: str | None, fact: str, ok: bool, text: str) -> None:
        self.lines.append(f"{model + ': ' if model else ''}{fact}: {text}")
        self.facts.append({"model": model, "fact": fact, "ok": ok, "text": text})
        if not ok:
            self.failed = True

    @property
    def exit_code(self) -> int:
        return 2 if self.auth_failed else (1 if self.failed else 0)


def _sheet(entry: Any) -> dict[str, Any]:
    """The price sheet of a catalog entry (unit unknown when it states none we can use)."""
    sheet = cost.from_catalog(entry.price_usd, entry.price_unit)
    out: dict[str, Any] = dict(sheet) if sheet else {"unit": "unknown"}
    if entry.note:
        out["note"] = entry.note
    return out


def _source(client: Any, model_id: str) -> str:
    return client.base_url + wire.MODEL_PATH.format(model_id=model_id)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _now() -> str:
    return text.iso_now()


async def add_models(client: Any, ids: list[str], root: Path) -> Outcome:
    """Fetch each model's catalog entry and write it into the project's models folder."""
    outcome = Outcome()
    for model_id in ids:
        if not valid_model_id(model_id):
            outcome.say(model_id, "add", False, "not a model id (letters, digits, . _ - and /)")
            continue
        try:
            entry = await client.model_entry(model_id)
        except AuthError:
            raise
        except ClientError as exc:
            outcome.say(model_id, "add", False, f"the catalog did not give it ({exc})")
            continue
        if entry.model_id not in (None, model_id):
            outcome.say(model_id, "add", False, f"the catalog answered for another model "
                                                f"({entry.model_id!r}); nothing written")
            continue
        if entry.input_schema is None:
            outcome.say(model_id, "add", False, "the catalog entry has no input schema; "
                                                "nothing written")
            continue
        folder = project_models(root) / model_id
        before = _stored(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / SCHEMA, _dump(entry.input_schema))
        if entry.output_schema is not None:
            write_atomic(folder / OUTPUT_SCHEMA, _dump(entry.output_schema))
        write_atomic(folder / PRICE, _dump(_sheet(entry)))
        meta = _json(folder / META) or {}
        others = {k: v for k, v in entry.raw.items() if k not in (
            wire.INPUT_SCHEMA, wire.OUTPUT_SCHEMA, wire.PRICE_USD, wire.PRICE_UNIT,
            wire.PRICE_NOTE, wire.MODEL_ID)}
        meta.update({"format": META_FORMAT, "pipeline": __version__,
                     "source": _source(client, model_id),
                     "fetched_at": _now(),
                     "catalog": others})
        if entry.raw.get(wire.CATALOG_KIND) in ("video", "image"):
            meta["kind"] = entry.raw[wire.CATALOG_KIND]
        write_atomic(folder / META, _dump(meta))
        where = folder.relative_to(root) if folder.is_relative_to(root) else folder
        price = describe(_sheet(entry))
        if before is None:
            outcome.say(model_id, "added", True, f"{where} (price {price})")
        elif before == entry.input_schema:
            outcome.say(model_id, "refreshed", True, f"{where}: schema unchanged (price {price})")
        else:
            outcome.say(model_id, "updated", True, f"{where}: the schema changed: "
                                                   + "; ".join(schema_drift(before,
                                                                            entry.input_schema)))
    return outcome


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stored(folder: Path) -> dict | None:
    data = _json(folder / SCHEMA)
    return data if isinstance(data, dict) else None


async def check_models(client: Any, ids: list[str], root: Path) -> Outcome:
    """Ask the live catalog about each model (default: every model of the project and the
    bundled ones): the token, the stated price, and whether the schema drifted."""
    outcome = Outcome()
    models: list[Model] = []
    for model_id in ids:
        try:
            models.append(load_model(model_id, root))
        except ModelNotFound as exc:
            outcome.say(model_id, "model", False, str(exc))
    if not ids:
        models = all_models(root)
    host = client.base_url
    token_said = False
    for model in models:
        try:
            entry = await client.model_entry(model.id)
        except AuthError as exc:
            outcome.say(None, "token", False, f"refused by {host} ({exc})")
            outcome.auth_failed = True
            return outcome
        except TransportError as exc:
            outcome.say(None, "catalog", False, f"cannot reach {host} ({exc})")
            return outcome
        except ClientError as exc:
            if not token_said and getattr(exc, "status_code", None) is not None:
                outcome.say(None, "token", True, f"accepted by {host}")
                token_said = True
            outcome.say(model.id, "catalog", False, f"not in the catalog of {host} ({exc})")
            continue
        if not token_said:
            outcome.say(None, "token", True, f"accepted by {host}")
            token_said = True
        _price_fact(outcome, model, entry)
        _schema_fact(outcome, model, entry)
    await _balance_fact(outcome, client)
    return outcome


async def _balance_fact(outcome: Outcome, client: Any) -> None:
    """The account's wallet, when it can be read (never a failure of the check)."""
    try:
        usd = await client.balance()
    except ClientError as exc:
        outcome.say(None, "balance", True, f"cannot be read at {client.account_url} ({exc})")
        return
    outcome.say(None, "balance", True, f"{text.money(usd)} (the account's wallet, "
                                       f"{client.account_url})")


def _price_fact(outcome: Outcome, model: Model, entry: Any) -> None:
    """The catalog's price; a price that differs from the stored price.json (an unknown one
    beside a stated one included) is drift, as a changed schema is."""
    live = _sheet(entry)
    text = f"{describe(live)} (catalog)"
    note = f"; note: {entry.note}" if entry.note else ""
    stored = model.price
    if cost.normalized(stored) == cost.normalized(live):
        outcome.say(model.id, "price", True, text + note)
        return
    where = "bundled" if model.source == BUNDLED else str(model.folder)
    fix = "refreshes it" if model.source != BUNDLED else "puts it in the project"
    outcome.say(model.id, "price", False,
                f"DRIFT: {text}, but the stored price.json ({where}) says {describe(stored)} "
                f"(runs use the catalog's; `pipeline models add {model.id}` {fix}){note}")


def _schema_fact(outcome: Outcome, model: Model, entry: Any) -> None:
    where = "bundled" if model.source == BUNDLED else str(model.folder)
    if entry.input_schema is None:
        outcome.say(model.id, "schema", True, "the catalog entry has no input schema to "
                                              "compare with")
        return
    if canonical(entry.input_schema) == canonical(model.input_schema):
        outcome.say(model.id, "schema", True, f"matches ({where}, sha256 "
                                              f"{model.schema_sha256[:12]})")
        return
    fix = f"`pipeline models add {model.id}` takes the catalog's" if model.source != BUNDLED \
        else f"`pipeline models add {model.id}` puts the catalog's in the project"
    outcome.say(model.id, "schema", False, "DRIFT: the catalog's differs from the one in "
                f"{where}: " + "; ".join(schema_drift(model.input_schema, entry.input_schema))
                + f" ({fix})")


def schema_drift(old: dict, new: dict) -> list[str]:
    """How an input schema changed, in a person's words (inputs added, removed, changed)."""
    a, b = old.get("properties") or {}, new.get("properties") or {}
    out = []
    added = [k for k in b if k not in a]
    removed = [k for k in a if k not in b]
    changed = []
    for k in a:
        if k in b and canonical(a[k]) != canonical(b[k]):
            keys = sorted({x for x in (*a[k], *b[k]) if canonical(a[k].get(x)) !=
                           canonical(b[k].get(x))}) if isinstance(a[k], dict) and \
                isinstance(b[k], dict) else []
            changed.append(f"{k} ({', '.join(keys)})" if keys else k)
    if added:
        out.append("inputs added: " + ", ".join(added))
    if removed:
        out.append("inputs removed: " + ", ".join(removed))
    if changed:
        out.append("inputs changed: " + ", ".join(changed))
    if sorted(old.get("required") or []) != sorted(new.get("required") or []):
        out.append(f"required: {sorted(old.get('required') or [])} -> "
                   f"{sorted(new.get('required') or [])}")
    others = sorted(k for k in {*old, *new} - {"properties", "required"}
                    if canonical(old.get(k)) != canonical(new.get(k)))
    if others:
        out.append("also changed: " + ", ".join(others))
    return out or ["they differ"]
