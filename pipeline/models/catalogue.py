"""The model catalogue: every model a job may use is one folder holding its input schema.

A model id names a folder `<model id>/` with `input.schema.json` (the provider's input schema,
unchanged) and, when known, `output.schema.json`, `price.json` (a price sheet, see
pipeline.models.cost) and `model.json` (where it came from, its typical generation time).
A model is looked up in the project's models folder first (`models/` under the manifest's
project root, the root the job folder uses; `pipeline models add` writes there, to be checked
into git), then among the bundled ones under `schemas/models/`.

Catalog schemas are understood as RunComfy writes them: media fields are marked with
`format: image_uri | image_uris | video_uri | video_uris | audio_uri | audio_uris` (on the
field or on its items), and the output schema names what a result carries (`image`, `images`,
`video`, `videos`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import wire
from ..errors import FormatError, ModelNotFound
from ..jsonio import check_format

PROJECT_MODELS = "models"  # the project's models folder, under its project root
SCHEMA = "input.schema.json"
OUTPUT_SCHEMA = "output.schema.json"
PRICE = "price.json"
META = "model.json"
META_FORMAT = 1  # model.json: {"format": 1, "pipeline", "source", "fetched_at", "kind", ...}
META_READABLE = frozenset({1})  # 1 also: no "format" (the bundled models, hand-written ones)
MODEL_ID = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
BUNDLED = "bundled"
PROJECT = "project"


def schemas_dir() -> Path:
    """The folder holding the JSON Schemas: packaged copy first, source tree second."""
    here = Path(__file__).resolve().parent.parent  # the pipeline package
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"bundled schemas not found next to {here}")


def bundled_models() -> Path:
    return schemas_dir() / "models"


def project_models(root: Path) -> Path:
    """The models folder of the project whose root is `root` (see pipeline.job.folder)."""
    return Path(root) / PROJECT_MODELS


def valid_model_id(model_id: object) -> bool:
    """True for an id that names a folder below a models folder (no `..`, no absolute path)."""
    return isinstance(model_id, str) and bool(MODEL_ID.fullmatch(model_id)) and \
        ".." not in model_id.split("/")


def media_kind(node: dict[str, Any]) -> str | None:
    """"image", "video" or "audio" for a schema node whose `format` is a media format."""
    fmt = node.get("format")
    return wire.MEDIA_FORMATS.get(fmt) if isinstance(fmt, str) else None


@dataclass(frozen=True)
class Model:
    """A model id with its input schema, price sheet, the schema's hash and where it was found."""

    id: str
    input_schema: dict[str, Any]
    price: dict[str, Any]
    schema_sha256: str
    meta: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    source: str = BUNDLED  # "bundled" or "project"
    folder: Path | None = None

    @property
    def properties(self) -> dict[str, Any]:
        return self.input_schema.get("properties", {})

    def defaults(self) -> dict[str, Any]:
        """Defaults of optional inputs (required ones must come from the manifest)."""
        required = set(self.input_schema.get("required", []))
        return {k: v["default"] for k, v in self.properties.items()
                if isinstance(v, dict) and "default" in v and k not in required}

    def media_fields(self) -> dict[str, str]:
        """Inputs that hold media files, by kind (image, video, audio): `format: image_uri`
        and the like on the field or on its items."""
        return dict(self._media)

    @functools.cached_property
    def _media(self) -> dict[str, str]:
        out = {}
        for name, prop in self.properties.items():
            if not isinstance(prop, dict):
                continue
            items = prop.get("items")
            kind = media_kind(prop) or (media_kind(items) if isinstance(items, dict) else None)
            if kind:
                out[name] = kind
        return out

    def image_fields(self) -> list[str]:
        """Inputs that hold images."""
        return [name for name, kind in self._media.items() if kind == "image"]

    def output_properties(self) -> dict[str, Any]:
        """The properties of the output schema (`{"output": {...}}` or the object itself)."""
        schema = self.output_schema or {}
        if isinstance(schema.get(wire.OUTPUT), dict):
            schema = schema[wire.OUTPUT]
        props = schema.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def kind(self) -> str:
        """What the model makes: "video" or "image" (from model.json, else its output schema,
        else its id: `.../image-to-video`, `.../text-to-image`)."""
        stated = self.meta.get("kind")
        if stated in ("video", "image"):
            return stated
        keys = set(self.output_properties())
        videos, images = keys & set(wire.VIDEO_OUTPUT_KEYS), keys & set(wire.IMAGE_OUTPUT_KEYS)
        if videos and not images:
            return "video"
        if images and not videos:
            return "image"
        last = self.id.rsplit("/", 1)[-1]
        return "image" if last.endswith(("image", "edit")) else "video"

    @functools.cached_property
    def _output_keys(self) -> tuple[str, ...]:
        ours = wire.VIDEO_OUTPUT_KEYS if self.kind == "video" else wire.IMAGE_OUTPUT_KEYS
        other = wire.IMAGE_OUTPUT_KEYS if self.kind == "video" else wire.VIDEO_OUTPUT_KEYS
        known = (*ours, *other)
        props = self.output_properties()
        if not props:
            return known
        return tuple(k for k in known if k in props) + tuple(k for k in props if k not in known)

    def output_keys(self) -> tuple[str, ...]:
        """The keys of `output` that hold what the model makes, in order of preference: those
        its output schema names (its own kind first), else the usual four."""
        return self._output_keys

    @property
    def fps(self) -> int:
        return int(self.meta.get("fps") or wire.OUTPUT_FPS)

    @property
    def typical_s(self) -> float | None:
        """The model's typical generation time (a guess, until a run measures it)."""
        value = (self.meta.get("generation_seconds") or {}).get("typical")
        return float(value) if isinstance(value, (int, float)) else None


def models_in(root: Path) -> dict[str, Path]:
    """Model id -> folder for every `<id>/input.schema.json` below `root` (none if absent)."""
    root = Path(root)
    if not root.is_dir():
        return {}
    found = {}
    for schema in sorted(root.rglob(SCHEMA)):
        model_id = schema.parent.relative_to(root).as_posix()
        if valid_model_id(model_id):
            found[model_id] = schema.parent
    return found


_CACHE: dict[tuple, Model] = {}
_CACHE_LOCK = threading.Lock()


def _changed(path: Path) -> tuple[int, int] | None:
    """What tells a file's new version from its old: its mtime and size (None: no file)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_model(folder: Path, model_id: str, source: str) -> Model:
    """The model in `folder` (re-read when one of its files changes). A file that is not JSON,
    or a model.json of a format this version does not read, is ModelNotFound naming it."""
    schema_file = Path(folder) / SCHEMA
    try:
        st = schema_file.stat()
    except OSError as exc:
        raise ModelNotFound(f"cannot read {schema_file}: {exc.strerror or exc}") from None
    key = (str(schema_file), st.st_mtime_ns, st.st_size, model_id, source,
           *(_changed(Path(folder) / name) for name in (PRICE, META, OUTPUT_SCHEMA)))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    try:
        raw = schema_file.read_bytes()
        schema = json.loads(raw)
        if not isinstance(schema, dict):
            raise ValueError("not a JSON object")
        extra = {name: _json_file(Path(folder) / name) for name in (PRICE, META, OUTPUT_SCHEMA)}
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"the schema of model {model_id!r} in {folder} cannot be read: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        check_format(extra[META] or {}, Path(folder) / META, META_READABLE,
                     f"upgrade pipeline, or add the model again with `pipeline models add "
                     f"{model_id}`")
    except FormatError as exc:
        raise ModelNotFound(f"model {model_id!r}: {exc}") from None
    model = Model(id=model_id, input_schema=schema,
                  price=extra[PRICE] or {"unit": "unknown"},
                  schema_sha256=hashlib.sha256(raw).hexdigest(), meta=extra[META] or {},
                  output_schema=extra[OUTPUT_SCHEMA], source=source, folder=Path(folder))
    with _CACHE_LOCK:
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = model
    return model


def _json_file(path: Path) -> dict | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def search_roots(project: Path | None = None) -> list[tuple[Path, str]]:
    """Where models are looked up, in order: the project's models folder, then the bundled."""
    roots = [(project_models(project), PROJECT)] if project is not None else []
    return roots + [(bundled_models(), BUNDLED)]


def known_models(project: Path | None = None) -> list[str]:
    """Every model id a manifest of this project may name."""
    ids: set[str] = set()
    for root, _ in search_roots(project):
        ids.update(models_in(root))
    return sorted(ids)


def all_models(project: Path | None = None) -> list[Model]:
    """Every model of the project and the bundled ones (a project model hides a bundled one
    of the same id)."""
    seen: dict[str, Model] = {}
    for root, source in search_roots(project):
        for model_id, folder in models_in(root).items():
            if model_id not in seen:
                seen[model_id] = read_model(folder, model_id, source)
    return [seen[k] for k in sorted(seen)]


def load_model(model_id: str, project: Path | None = None) -> Model:
    """The model for `model_id`: the project's (under `project`, its root) first, then the
    bundled one; ModelNotFound names the known ones and how to add it."""
    if valid_model_id(model_id):
        for root, source in search_roots(project):
            folder = root / model_id
            if (folder / SCHEMA).is_file():
                return read_model(folder, model_id, source)
    where = f"{project_models(project)} and " if project is not None else ""
    known = ", ".join(known_models(project)) or "none"
    raise ModelNotFound(f"no schema for model {model_id!r}; known models: {known} (looked in "
                        f"{where}the bundled models; `pipeline models add MODEL_ID` adds one "
                        "from RunComfy's catalog)")
