"""Which price applies: the catalog's, else run.price, else unknown, always said where from."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import __version__
from pipeline.errors import FormatError
from pipeline.job.folder import JobFolder
from pipeline.job.price import (
    CATALOG_FORMAT,
    Price,
    cache_entry,
    cached_entry,
    catalog_entry,
    corrected,
    resolve_price,
)

STATED = {"unit": "second", "by": "resolution", "usd": {"720P": 0.04, "1080P": 0.08}}


def manifest(price=None, sheet=None) -> SimpleNamespace:
    model = SimpleNamespace(id="m/x", price=sheet or {"unit": "unknown"})
    return SimpleNamespace(model=model, run=SimpleNamespace(price=price),
                           sweep=SimpleNamespace(models={model.id: model}))


def test_the_catalog_wins_and_a_disagreeing_run_price_is_said() -> None:
    """With a catalog entry, its price is used; a run.price that says otherwise is a warning
    (plan and run both print it), never silently ignored."""
    entry = catalog_entry("m/x", 0.05, "second", None, "model-api.runcomfy.net")
    price = resolve_price(manifest(STATED), entry, live=True)
    assert price.sheet == {"unit": "second", "usd": 0.05}
    assert price.source == "catalog (model-api.runcomfy.net)"
    [warning] = price.warnings
    assert "run.price" in warning and "$0.05 per second" in warning and "720P $0.04" in warning


def test_a_cached_entry_says_when_it_was_fetched() -> None:
    """An entry from the job folder's cache names its fetch time in the source."""
    entry = catalog_entry("m/x", 0.05, "second", None, "api")
    price = resolve_price(manifest(), entry)
    assert price.source == f"catalog (api, cached {entry['fetched_at']})"
    assert not price.warnings


def test_without_a_catalog_price_run_price_then_unknown() -> None:
    """No catalog price: run.price; neither: unknown (a None sheet, never $0)."""
    no_price = catalog_entry("m/x", None, None, "ask sales", "api")
    assert resolve_price(manifest(STATED), no_price).source == "run.price"
    assert resolve_price(manifest(STATED), None).sheet == STATED
    unknown = resolve_price(manifest(), None)
    assert unknown.sheet is None and unknown.source.startswith("unknown")


def test_an_agreeing_run_price_is_no_warning() -> None:
    """The same price written in the manifest and in the catalog is not a disagreement."""
    entry = catalog_entry("m/x", 0.05, "second", None, "api")
    assert not resolve_price(manifest({"unit": "second", "usd": 0.05}), entry).warnings


def test_a_price_sheet_stored_with_the_model_stands_for_the_catalog() -> None:
    """A model's stored price sheet (an earlier copy of its catalog entry) is used before
    run.price."""
    sheet = {"unit": "output", "usd": 0.3}
    price = resolve_price(manifest(STATED, sheet), None)
    assert price.sheet == sheet and "stored with m/x" in price.source and price.warnings


CATALOG = Price({"unit": "second", "usd": 0.05}, "catalog (api)")


def canary(cost, estimate=0.25, sheet=None) -> dict:
    return {"e": "canary", "cell": "c", "ok": True, "estimate": estimate, "cost": cost,
            "sheet": sheet or {"unit": "second", "usd": 0.05}}


@pytest.mark.parametrize("event,usd", [
    (None, 0.05),  # no canary yet
    (canary(0.26), 0.05),  # 4% off: within tolerance, the catalog stands
    (canary(None), 0.05),  # no cost reported
    (canary(0.30), 0.06),  # 20% more: the price is scaled
    (canary(0.20), 0.04),  # 20% less too
    (canary(0.30, sheet={"unit": "second", "usd": 0.1}), 0.05),  # made at another price
    (canary(0.30, estimate=None), 0.05),  # no estimate to compare with
])
def test_what_the_canary_was_billed_corrects_the_price(event, usd) -> None:
    """A canary billed more than 5% off its estimate at this same price scales the price by
    what it cost; otherwise the price is the uncorrected one."""
    price = corrected(CATALOG, event)
    assert price.sheet == {"unit": "second", "usd": usd}
    assert (price.base is CATALOG) == (usd != 0.05)


def test_a_corrected_price_says_so_and_corrects_from_the_uncorrected_one() -> None:
    """The source names the factor and the figures; correcting again starts from the
    uncorrected price (never compounds); by-input sheets are scaled per value."""
    once = corrected(CATALOG, canary(0.30))
    assert once.source == ("catalog (api), x1.2 as the canary cell was billed ($0.3000 for an "
                           "estimate of $0.2500)")
    assert corrected(once, canary(0.30)) == once
    assert corrected(once, canary(0.25)) is CATALOG
    assert once.as_json()["uncorrected"] == {"sheet": CATALOG.sheet, "source": "catalog (api)"}
    by = Price(STATED, "run.price")
    event = canary(0.5, estimate=0.2, sheet=STATED)
    assert corrected(by, event).sheet["usd"] == {"720P": 0.1, "1080P": 0.2}
def test_each_model_has_its_own_price_and_run_price_may_name_models() -> None:
    """In a sweep of several models every model's price is resolved on its own: the catalog's
    entry of that model, else its stored sheet, else run.price's entry for it; the sources
    say which model each is for."""
    from pipeline.job.price import resolve_prices

    a = SimpleNamespace(id="m/a", price={"unit": "unknown"})
    b = SimpleNamespace(id="m/b", price={"unit": "output", "usd": 0.3})
    c = SimpleNamespace(id="m/c", price={"unit": "unknown"})
    m = SimpleNamespace(model=a, sweep=SimpleNamespace(models={"m/a": a, "m/b": b, "m/c": c}),
                        run=SimpleNamespace(price={"m/c": {"unit": "second", "usd": 0.2}}))
    prices = resolve_prices(m, {"m/a": catalog_entry("m/a", 0.05, "second", None, "api")},
                            live=True)
    assert prices.sheets() == {"m/a": {"unit": "second", "usd": 0.05},
                               "m/b": {"unit": "output", "usd": 0.3},
                               "m/c": {"unit": "second", "usd": 0.2}}
    assert prices.sheet is None and prices.unknown() == []
    assert prices.source.startswith("m/a: catalog (api); m/b: price sheet stored with m/b")
    assert resolve_prices(m, {}).of("m/a").sheet is None


def test_a_canary_corrects_only_its_own_models_price() -> None:
    """In a sweep of several models, what the canary cell was billed re-prices its own model;
    another model at the very same price stays as the catalog says."""
    from pipeline.job.price import Prices

    prices = Prices({"m/a": CATALOG, "m/b": CATALOG})
    fixed = prices.corrected({"m/b": {**canary(0.30), "model": "m/b"}})
    assert fixed.of("m/a") is CATALOG and fixed.of("m/b").sheet["usd"] == pytest.approx(0.06)
    assert fixed.uncorrected == prices and "m/b: " in fixed.source


def test_each_models_canary_corrects_its_own_price() -> None:
    """Two models, each with its own billed canary: each is re-priced by its own bill; an
    event from before canaries named their model applies to the model it fits."""
    from pipeline.job.price import Prices

    prices = Prices({"m/a": CATALOG, "m/b": CATALOG})
    fixed = prices.corrected({"m/a": {**canary(0.20), "model": "m/a"},
                              "m/b": {**canary(0.30), "model": "m/b"}})
    assert fixed.of("m/a").sheet["usd"] == pytest.approx(0.04)
    assert fixed.of("m/b").sheet["usd"] == pytest.approx(0.06)
    assert Prices({"m/a": CATALOG}).corrected({None: canary(0.30)}).sheet["usd"] == \
        pytest.approx(0.06)


# --- catalog.json: the job folder's cache of catalog entries --------------------------------
def test_catalog_json_keeps_each_models_entry_in_its_format(tmp_path: Path) -> None:
    """catalog.json opens with its format and the writing version and keeps every model's
    entry (the newest for each)."""
    folder = JobFolder(tmp_path)
    first = catalog_entry("m/x", 0.05, "second", None, "api")
    cache_entry(folder, first)
    cache_entry(folder, catalog_entry("m/y", 0.02, "output", None, "api"))
    newer = catalog_entry("m/x", 0.06, "second", None, "api")
    cache_entry(folder, newer)
    data = json.loads(folder.catalog.read_text())
    assert data["format"] == CATALOG_FORMAT and data["pipeline"] == __version__
    assert [e["model"] for e in data["entries"]] == ["m/x", "m/y"]
    assert cached_entry(folder, "m/x") == newer and cached_entry(folder, "m/z") is None


@pytest.mark.parametrize("legacy", ["one", "entries"])
def test_catalog_json_written_before_formats_still_reads(tmp_path: Path, legacy: str) -> None:
    """A catalog.json with no "format" (format 1: one entry for a one-model job, else
    `entries`) reads, and is rewritten stamped when the next entry is kept."""
    folder = JobFolder(tmp_path)
    entry = catalog_entry("m/x", 0.05, "second", None, "api")
    folder.catalog.write_text(json.dumps(entry if legacy == "one" else {"entries": [entry]}))
    assert cached_entry(folder, "m/x") == entry
    cache_entry(folder, catalog_entry("m/y", 0.02, "output", None, "api"))
    assert cached_entry(folder, "m/x") == entry
    assert json.loads(folder.catalog.read_text())["format"] == CATALOG_FORMAT


def test_catalog_json_of_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    """A catalog.json in a format this version does not read is refused with its name and
    what to do; it is not overwritten."""
    folder = JobFolder(tmp_path)
    content = {"format": CATALOG_FORMAT + 1, "pipeline": "9.0.0", "models": {}}
    folder.catalog.write_text(json.dumps(content))
    wanted = r"catalog\.json is in format 2, written by pipeline 9\.0\.0; .*: delete it"
    with pytest.raises(FormatError, match=wanted):
        cached_entry(folder, "m/x")
    with pytest.raises(FormatError, match=wanted):
        cache_entry(folder, catalog_entry("m/x", 0.05, "second", None, "api"))
    assert json.loads(folder.catalog.read_text()) == content
