"""Which price applies to each model of a job: resolved in one place, and every output says
where it came from.

For each model, the order: its catalog entry (asked of the API when it answers, and cached in
the job folder with the time it was fetched; a price sheet stored with the model is an older
copy of it), then the manifest's `run.price` (one sheet, or one per model id), else unknown
(never $0). When the catalog and `run.price` disagree, the catalog's is used and the
disagreement is carried as a warning that `plan` and `run` print. The run records the prices
and their sources in its `run` event, and `plan.json`'s estimates are made with them, so
`status` and the report use the very prices the run used. A cell is priced with its own
model's price (`Prices.of`); there is no other path to a price.

What the service bills has the last word: once a job's canary cell (pipeline.run.canary) was
billed more than BILLED_TOLERANCE off its estimate, `corrected` scales the price of its model
by what it cost, for the run going on (before anything else is reserved) and for every later
`plan`, `run` and `status` of the job (the canary's event is in its journal).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import text
from ..durable import write_atomic
from ..jsonio import check_format, stamped
from ..models import cost
from ..models.catalogue import Model
from ..prepare.manifest import Manifest
from .folder import JobFolder

log = logging.getLogger("pipeline.price")
SIM_ORIGIN = "the built-in simulator"
BILLED_TOLERANCE = 0.05  # a canary billed more than 5% off its estimate re-prices the job
CATALOG_FORMAT = 1  # catalog.json: {"format", "pipeline", "entries": [catalog_entry, ...]}
CATALOG_READABLE = frozenset({1})  # 1 also: no "format", one entry or {"entries": [...]}


@dataclass(frozen=True)
class Price:
    """A price sheet (see pipeline.models.cost) or None, where it came from, and warnings;
    `base`: the price before a correction by what the service billed (None: not corrected)."""

    sheet: dict[str, Any] | None
    source: str
    warnings: tuple[str, ...] = ()
    base: Price | None = None

    @property
    def uncorrected(self) -> Price:
        return self.base if self.base is not None else self

    def as_json(self) -> dict[str, Any]:
        data = {"sheet": self.sheet, "source": self.source, "warnings": list(self.warnings)}
        if self.base is not None:
            data["uncorrected"] = {"sheet": self.base.sheet, "source": self.base.source}
        return data


def billed_ratio(estimate: float | None, billed: float | None) -> float | None:
    """What the service billed for a cell over its estimate; None when either is unknown."""
    if estimate is None or billed is None or estimate <= 0:
        return None
    return billed / estimate


def corrected(price: Price, canary: dict[str, Any] | None, model: str | None = None) -> Price:
    """The price (of `model`) once the job's canary was billed: the uncorrected sheet scaled by
    the canary's billed cost over its estimate, when they differ by more than BILLED_TOLERANCE
    and that estimate was made at this same uncorrected price for this same model (a `canary`
    journal event: `estimate`, `cost`, `sheet`, `model`); otherwise the uncorrected price."""
    base = price.uncorrected
    if not canary or base.sheet is None or not isinstance(canary.get("sheet"), dict) or \
            cost.normalized(canary["sheet"]) != cost.normalized(base.sheet) or \
            canary.get("model") not in (None, model) and model is not None:
        return base
    ratio = billed_ratio(canary.get("estimate"), canary.get("cost"))
    if ratio is None or abs(ratio - 1) <= BILLED_TOLERANCE:
        return base
    source = (f"{base.source}, x{ratio:.4g} as the canary cell was billed "
              f"(${canary['cost']:,.4f} for an estimate of ${canary['estimate']:,.4f})")
    return Price(cost.scaled(base.sheet, ratio), source, base.warnings, base)


UNKNOWN = Price(None, "unknown (the catalog gave no price and run.price is not set)")


@dataclass(frozen=True)
class Prices:
    """The price of each model of a job, by model id (in the sweep's order)."""

    by_model: dict[str, Price]

    def of(self, model_id: str) -> Price:
        return self.by_model.get(model_id, UNKNOWN)

    def sheets(self) -> dict[str, dict[str, Any] | None]:
        return {k: p.sheet for k, p in self.by_model.items()}

    @property
    def single(self) -> Price | None:
        return next(iter(self.by_model.values())) if len(self.by_model) == 1 else None

    @property
    def sheet(self) -> dict[str, Any] | None:
        """The price sheet of a one-model job (None with several models: see `of`)."""
        return self.single.sheet if self.single else None

    @property
    def source(self) -> str:
        if self.single:
            return self.single.source
        return "; ".join(f"{k}: {p.source}" for k, p in self.by_model.items())

    @property
    def warnings(self) -> tuple[str, ...]:
        if self.single:
            return self.single.warnings
        return tuple(f"{k}: {w}" for k, p in self.by_model.items() for w in p.warnings)

    def unknown(self) -> list[str]:
        """The models whose price is unknown."""
        return [k for k, p in self.by_model.items() if p.sheet is None]

    @property
    def uncorrected(self) -> Prices:
        return Prices({k: p.uncorrected for k, p in self.by_model.items()})

    def corrected(self, canaries: Mapping[str | None, dict[str, Any]] | None) -> Prices:
        """The prices once the job's canary cells were billed (per model, its last billed
        canary: JobState.billed_canaries): each model's own corrected
        (pipeline.job.price.corrected), a model without one as it was."""
        canaries = canaries or {}
        return Prices({k: corrected(p, canaries.get(k) or canaries.get(None), k)
                       for k, p in self.by_model.items()})

    def as_json(self) -> dict[str, Any]:
        data = {"sheet": self.sheet, "source": self.source, "warnings": list(self.warnings),
                "models": {k: p.as_json() for k, p in self.by_model.items()}}
        if self.single is not None and self.single.base is not None:
            data["uncorrected"] = self.single.as_json()["uncorrected"]
        return data


def catalog_entry(model_id: str, price_usd: float | None, price_unit: str | None,
                  note: str | None, origin: str) -> dict[str, Any]:
    """A catalog entry's price fields as the job folder caches them."""
    return {"model": model_id, "price_usd": price_usd, "price_unit": price_unit, "note": note,
            "origin": origin, "fetched_at": text.iso_now()}


def _cached(folder: JobFolder) -> dict[str, dict[str, Any]]:
    """Every entry in catalog.json by model: `entries`, or (written before catalog.json had a
    format, by a one-model job) the one entry. One of a format this version does not read is
    refused (FormatError)."""
    try:
        data = json.loads(folder.catalog.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):  # not ours: as unreadable as invalid JSON
        return {}
    check_format(data, folder.catalog, CATALOG_READABLE, "delete it (it only caches the "
                 "catalog's prices: the next run asks the catalog again), or upgrade pipeline")
    listed = data.get("entries")
    entries = listed if isinstance(listed, list) else [data]
    return {e["model"]: e for e in entries if isinstance(e, dict) and isinstance(
        e.get("model"), str)}


def cache_entry(folder: JobFolder, *entries: dict[str, Any]) -> None:
    """Keep the catalog entries just fetched in catalog.json (other models' entries stay)."""
    kept = {**_cached(folder), **{e["model"]: e for e in entries}}
    folder.path.mkdir(parents=True, exist_ok=True)
    data = stamped(CATALOG_FORMAT, {"entries": list(kept.values())})
    write_atomic(folder.catalog, json.dumps(data, indent=2) + "\n")


def cached_entry(folder: JobFolder, model_id: str) -> dict[str, Any] | None:
    """The catalog entry a run of this job fetched last for this model, if any."""
    return _cached(folder).get(model_id)


def _describe(sheet: dict[str, Any]) -> str:
    usd = sheet.get("usd")
    if isinstance(usd, dict):
        each = ", ".join(f"{k} {text.rate(v)}" for k, v in usd.items())
        return f"by {sheet.get('by', 'resolution')}: {each} per {sheet['unit']}"
    return f"{text.rate(sheet['usd'])} per {sheet['unit']}"


def describe(sheet: dict[str, Any] | None) -> str:
    """A price sheet as a person reads it: `$0.05 per second`, or `unknown`."""
    if not sheet or sheet.get("unit") not in ("second", "output"):
        return "unknown"
    return _describe(sheet)


def stated_price(manifest: Manifest, model_id: str) -> dict[str, Any] | None:
    """The manifest's `run.price` for a model: the one sheet, or the model's own entry."""
    stated = manifest.run.price
    if not stated or "unit" in stated:
        return stated
    return stated.get(model_id)


def models_of(manifest: Manifest) -> list[Model]:
    """The models of a manifest's sweep, in its order."""
    return list(manifest.sweep.models.values())


def resolve_price(manifest: Manifest, entry: dict[str, Any] | None, *, live: bool = False,
                  model: Model | None = None) -> Price:
    """The price a run of this manifest uses for `model` (default: its first), given the
    catalog entry it has (live or cached)."""
    model = model or manifest.model
    stated = stated_price(manifest, model.id)
    chosen: tuple[dict[str, Any], str] | None = None
    sheet = cost.from_catalog(entry.get("price_usd"), entry.get("price_unit")) if entry else None
    if entry is not None and sheet is not None:  # (a sheet comes from an entry)
        when = "" if live else f", cached {entry.get('fetched_at')}"
        chosen = sheet, f"catalog ({entry.get('origin', 'the API')}{when})"
    elif model.price.get("unit") in ("second", "output"):
        chosen = model.price, f"price sheet stored with {model.id}"
    if chosen is not None:
        warnings: tuple[str, ...] = ()
        if stated and cost.normalized(stated) != cost.normalized(chosen[0]):
            warnings = (f"run.price ({_describe(stated)}) differs from the {chosen[1]} "
                        f"({_describe(chosen[0])}); the catalog's price is used",)
        return Price(chosen[0], chosen[1], warnings)
    if stated:
        return Price(stated, "run.price")
    return UNKNOWN


def resolve_prices(manifest: Manifest, entries: Mapping[str, dict[str, Any] | None], *,
                   live: Mapping[str, bool] | bool = False) -> Prices:
    """The price of every model of the manifest, from the entries it has (by model id)."""
    out = {}
    for model in models_of(manifest):
        fresh = live.get(model.id, False) if isinstance(live, Mapping) else live
        out[model.id] = resolve_price(manifest, entries.get(model.id), live=fresh, model=model)
    return Prices(out)
