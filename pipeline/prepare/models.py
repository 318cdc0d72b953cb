"""The bundled model catalogue: one folder per model id under `schemas/models/`.

Adding a model is adding a folder `schemas/models/<model id>/` with `input.schema.json`
(the provider's input schema, unchanged) and `price.json` (see `pipeline.prepare.cost`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotFound


def schemas_dir() -> Path:
    """The folder holding the JSON Schemas: packaged copy first, source tree second."""
    here = Path(__file__).resolve().parent.parent  # the pipeline package
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"bundled schemas not found next to {here}")


@dataclass(frozen=True)
class Model:
    """A model id with its bundled input schema, price sheet and the schema's hash."""

    id: str
    input_schema: dict[str, Any]
    price: dict[str, Any]
    schema_sha256: str
    meta: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        return self.input_schema.get("properties", {})

    def defaults(self) -> dict[str, Any]:
        """Defaults of optional inputs (required ones must come from the manifest)."""
        required = set(self.input_schema.get("required", []))
        return {k: v["default"] for k, v in self.properties.items()
                if "default" in v and k not in required}

    def image_fields(self) -> list[str]:
        """Inputs that hold images: `format: image_uri` on the field or on its items."""
        out = []
        for name, prop in self.properties.items():
            if prop.get("format") in ("image_uri", "image_uris") or (
                    prop.get("items", {}).get("format") == "image_uri"):
                out.append(name)
        return out


def known_models() -> list[str]:
    root = schemas_dir() / "models"
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("input.schema.json"))


@functools.lru_cache(maxsize=None)
def load_model(model_id: str) -> Model:
    """The bundled model for `model_id`; ModelNotFound names the known ones."""
    root = schemas_dir() / "models"
    folder = (root / model_id).resolve()
    schema_file = folder / "input.schema.json"
    if root.resolve() not in folder.parents or not schema_file.is_file():
        known = ", ".join(known_models())
        raise ModelNotFound(f"no bundled schema for model {model_id!r}; known models: {known}")
    raw = schema_file.read_bytes()
    price_file = folder / "price.json"
    price = json.loads(price_file.read_text()) if price_file.is_file() else {"unit": "unknown"}
    meta_file = folder / "model.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return Model(
        id=model_id,
        input_schema=json.loads(raw),
        price=price,
        schema_sha256=hashlib.sha256(raw).hexdigest(),
        meta=meta,
    )
