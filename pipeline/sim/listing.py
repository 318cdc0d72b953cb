"""The catalog the simulator serves: which models it knows, their entries and their prices.

Models come from the `models_dirs` of its config, in order (`pipeline sim --models DIR`, laid
out like a project's `models/` folder: `<model id>/input.schema.json`, with `output.schema.json`
and `price.json` beside it when known), then the bundled ones; the first folder holding a model
id wins. A model is read again when its schema file changes, so a schema changed under a
running simulator is what the next call sees (what `pipeline models check` is for).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import wire
from ..errors import ModelNotFound
from ..models import cost
from ..models.catalogue import (
    BUNDLED,
    PROJECT,
    SCHEMA,
    Model,
    bundled_models,
    models_in,
    read_model,
    valid_model_id,
)
from .config import SimConfig


def stated(model: Model, config: SimConfig) -> tuple[float, str, str]:
    """(base_price_usd, price_unit, pricing_note) the simulator states for a model: its
    price.json when that gives one price per second or per output, else the config's."""
    sheet = model.price
    usd = sheet.get("usd")
    if sheet.get("unit") in ("second", "output") and isinstance(usd, (int, float)) and \
            not isinstance(usd, bool):
        note = sheet.get("note") or f"price of {model.id} from its price.json"
        return float(usd), sheet["unit"], str(note)
    return (config.price_usd, config.price_unit,
            f"simulated price: ${config.price_usd} per {config.price_unit}")


def billed(model: Model | None, body: dict[str, Any], config: SimConfig) -> float:
    """What a succeeded request costs: the stated price applied as the client estimates it
    (pipeline.models.cost), on the model's defaults under the body; times `cost_factor` (a
    service that bills other than its catalog says)."""
    if model is None:
        return 0.0
    usd, unit, _ = stated(model, config)
    usd *= config.cost_factor
    usd_total = cost.cell_cost({"unit": unit, "usd": usd}, {**model.defaults(), **body},
                               model.fps)
    return round(usd_total or 0.0, 6)


class Catalog:
    """The models one simulator serves."""

    def __init__(self, dirs: tuple[str, ...] | list[str] = ()):
        self.roots = [(Path(d), PROJECT) for d in dirs] + [(bundled_models(), BUNDLED)]

    def get(self, model_id: str) -> Model | None:
        """The model, read fresh if its schema changed; None when no folder has it."""
        if not valid_model_id(model_id):
            return None
        for root, source in self.roots:
            folder = root / model_id
            if (folder / SCHEMA).is_file():
                try:
                    return read_model(folder, model_id, source)
                except ModelNotFound:
                    return None
        return None

    def ids(self) -> list[str]:
        found: set[str] = set()
        for root, _ in self.roots:
            found.update(models_in(root))
        return sorted(found)

    def entry(self, model: Model, config: SimConfig, *, schema: bool = True
              ) -> dict[str, Any]:
        """A catalog entry as `GET /v1/models/{id}` answers it."""
        usd, unit, note = stated(model, config)
        entry: dict[str, Any] = {
            wire.MODEL_ID: model.id,
            wire.CATALOG_KIND: model.kind,
            wire.PRICE_USD: usd,
            wire.PRICE_UNIT: unit,
            wire.PRICE_NOTE: note,
        }
        if schema:
            entry[wire.INPUT_SCHEMA] = model.input_schema
            if model.output_schema is not None:
                entry[wire.OUTPUT_SCHEMA] = model.output_schema
        return entry
