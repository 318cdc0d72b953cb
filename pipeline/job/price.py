"""Which price applies to a job: resolved in one place, and every output says where it came from.

The order: the model's catalog entry (asked of the API when it answers, and cached in the job
folder with the time it was fetched; a price sheet stored with the model is an older copy of
it), then the manifest's `run.price`, else unknown (never $0). When the catalog and `run.price`
disagree, the catalog's is used and the disagreement is carried as a warning that `plan` and
`run` print. The run records the price and its source in its `run` event, and `plan.json`'s
estimates are made with it, so `status` and the report use the very price the run used.

What the service bills has the last word: once a job's canary cell (pipeline.run.canary) was
billed more than BILLED_TOLERANCE off its estimate, `corrected` scales the price by what it
cost, for the run going on (before anything else is reserved) and for every later `plan`,
`run` and `status` of the job (the canary's event is in its journal).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ..errors import AuthError, ClientError, MissingToken
from ..prepare import cost
from .durable import write_atomic
from .folder import JobFolder

log = logging.getLogger("pipeline.price")
SIM_ORIGIN = "the built-in simulator"
BILLED_TOLERANCE = 0.05  # a canary billed more than 5% off its estimate re-prices the job


@dataclass(frozen=True)
class Price:
    """A price sheet (see pipeline.prepare.cost) or None, where it came from, and warnings;
    `base`: the price before a correction by what the service billed (None: not corrected)."""

    sheet: dict | None
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


def corrected(price: Price, canary: dict[str, Any] | None) -> Price:
    """The price once the job's canary was billed: the uncorrected sheet scaled by the canary's
    billed cost over its estimate, when they differ by more than BILLED_TOLERANCE and that
    estimate was made at this same uncorrected price (a `canary` journal event: `estimate`,
    `cost`, `sheet`); otherwise the uncorrected price."""
    base = price.uncorrected
    if not canary or base.sheet is None or not isinstance(canary.get("sheet"), dict) or \
            cost.normalized(canary["sheet"]) != cost.normalized(base.sheet):
        return base
    ratio = billed_ratio(canary.get("estimate"), canary.get("cost"))
    if ratio is None or abs(ratio - 1) <= BILLED_TOLERANCE:
        return base
    source = (f"{base.source}, x{ratio:.4g} as the canary cell was billed "
              f"(${canary['cost']:,.4f} for an estimate of ${canary['estimate']:,.4f})")
    return Price(cost.scaled(base.sheet, ratio), source, base.warnings, base)


def catalog_entry(model_id: str, price_usd: float | None, price_unit: str | None,
                  note: str | None, origin: str) -> dict[str, Any]:
    """A catalog entry's price fields as the job folder caches them."""
    return {"model": model_id, "price_usd": price_usd, "price_unit": price_unit, "note": note,
            "origin": origin, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def cache_entry(folder: JobFolder, entry: dict[str, Any]) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    write_atomic(folder.catalog, json.dumps(entry, indent=2) + "\n")


def cached_entry(folder: JobFolder, model_id: str) -> dict[str, Any] | None:
    """The catalog entry a run of this job fetched last, if it is of this model."""
    try:
        entry = json.loads(folder.catalog.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("model") == model_id else None


def _describe(sheet: dict) -> str:
    usd = sheet.get("usd")
    if isinstance(usd, dict):
        each = ", ".join(f"{k} ${v:g}" for k, v in usd.items())
        return f"by {sheet.get('by', 'resolution')}: {each} per {sheet['unit']}"
    return f"${usd:g} per {sheet['unit']}"


def resolve_price(manifest: Any, entry: dict[str, Any] | None, *, live: bool = False) -> Price:
    """The price a run of this manifest uses, given the catalog entry it has (live or cached)."""
    stated = manifest.run.price
    chosen: tuple[dict, str] | None = None
    sheet = cost.from_catalog(entry.get("price_usd"), entry.get("price_unit")) if entry else None
    if sheet is not None:
        when = "" if live else f", cached {entry.get('fetched_at')}"
        chosen = sheet, f"catalog ({entry.get('origin', 'the API')}{when})"
    elif manifest.model.price.get("unit") in ("second", "output"):
        chosen = manifest.model.price, f"price sheet stored with {manifest.model.id}"
    if chosen is not None:
        warnings = ()
        if stated and cost.normalized(stated) != cost.normalized(chosen[0]):
            warnings = (f"run.price ({_describe(stated)}) differs from the {chosen[1]} "
                        f"({_describe(chosen[0])}); the catalog's price is used",)
        return Price(chosen[0], chosen[1], warnings)
    if stated:
        return Price(stated, "run.price")
    return Price(None, "unknown (the catalog gave no price and run.price is not set)")


async def fetch_price(client: Any, m: Any, folder: JobFolder, origin: str, *,
                      cache: bool = True) -> Price:
    """The price from the live catalog (cached in the job folder unless `cache` is false),
    else the entry cached earlier."""
    try:
        entry = await client.model_entry(m.model.id)
    except AuthError:
        raise
    except ClientError as exc:
        log.info("the catalog did not answer (%s); using the last entry fetched, if any", exc)
        return resolve_price(m, cached_entry(folder, m.model.id))
    fetched = catalog_entry(m.model.id, entry.price_usd, entry.price_unit, entry.note, origin)
    if cache:
        cache_entry(folder, fetched)
    return resolve_price(m, fetched, live=True)


def price_now(m: Any, folder: JobFolder, *, backend: str | None = None,
              offline: bool = False) -> Price:
    """The price a run would use, for `plan` (and `status` of a job never run): asked of the
    catalog as the run asks it (free of charge; the built-in simulator's catalog is its
    configuration), else the entry cached by the last run."""
    from ..client import RunComfyClient

    backend = backend or m.backend
    if backend == "sim":
        from ..sim import SimConfig

        d = SimConfig()
        return resolve_price(m, catalog_entry(m.model.id, d.price_usd, d.price_unit, None,
                                              SIM_ORIGIN), live=True)
    if not offline:
        try:
            client = RunComfyClient.from_env(retry_attempts=2, retry_timeout=10.0, timeout=10.0)
        except MissingToken:
            pass
        else:
            async def ask() -> Price:
                async with client:
                    return await fetch_price(client, m, folder,
                                             urlparse(client.base_url).netloc, cache=False)
            try:
                return asyncio.run(ask())
            except AuthError as exc:
                log.warning("the catalog refused the token (%s); the price shown is not the "
                            "catalog's", exc)
    return resolve_price(m, cached_entry(folder, m.model.id))
