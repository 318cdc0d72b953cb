"""Which price applies: the catalog's, else run.price, else unknown, always said where from."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.job.price import catalog_entry, resolve_price

STATED = {"unit": "second", "by": "resolution", "usd": {"720P": 0.04, "1080P": 0.08}}


def manifest(price=None, sheet=None) -> SimpleNamespace:
    model = SimpleNamespace(id="m/x", price=sheet or {"unit": "unknown"})
    return SimpleNamespace(model=model, run=SimpleNamespace(price=price))


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
