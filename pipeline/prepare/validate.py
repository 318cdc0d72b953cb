"""Prepare, validate: every request body is checked against its model's input schema.

The catalog schema's nonstandard parts are real validator extensions, not side checks: the
`image_uri`/`image_uris` formats (http(s) URL, `data:` URI or local file; JPEG or PNG by
content), the `video_uri`/`audio_uri` formats (an http(s) URL or a `data:` URI), the
`validations` keyword (file size, resolution and aspect-ratio rules on images, with the
schema's own error texts) and the type `"float"` (a JSON number). Limits written only in a
field's description ("less than 800 characters") are enforced too. The simulator refuses
bodies with this same validator (pipeline.sim.checks), as the real service would.

Speed: when the schema's top level only has properties and `required` (no cross-field keywords),
each property value is checked once per distinct value and the answer reused, so a 100,000-cell
sweep costs about one check per distinct seed, prompt and image rather than one per cell.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import FormatChecker, ValidationError

from .. import wire
from ..models.catalogue import Model, media_kind
from .images import ImageInspector, ImageProblem, kind_of
from .wording import enum_near, failing_value, node_schema, rule_value
from .yamlsrc import Path_

MISSING = "missing required input"
_SIMPLE_TOP = {"type", "title", "description", "required", "properties", "$schema", "$id",
               "default", "examples", "additionalProperties"}
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "=": operator.eq}
_RULE = re.compile(r"^\s*([a-z_/]+?)\s*(<=|>=|==|<|>|=)\s*$")
_LENGTH = [
    (re.compile(r"(?:less|fewer) than (\d+) characters", re.I), -1),
    (re.compile(r"(?:at most|up to|no more than|maximum of|max\.?) (\d+) characters", re.I), 0),
]


def image_metric(name: str, info: Any) -> float | None:
    """The measure a `validations` rule names, for one image; None for an unknown measure."""
    w, h = info.width, info.height
    table = {
        "file_size_mb": lambda: info.size_bytes / (1024 * 1024),
        "file_size_kb": lambda: info.size_bytes / 1024,
        "width_pixels": lambda: w,
        "height_pixels": lambda: h,
        "shortest_side_pixels": lambda: min(w, h),
        "longest_side_pixels": lambda: max(w, h),
        "width/height": lambda: w / h,
        "height/width": lambda: h / w,
        "pixels": lambda: w * h,
        "megapixels": lambda: w * h / 1e6,
    }
    fn = table.get(name)
    return fn() if fn else None


def _show_metric(name: str, value: float) -> str:
    if name.startswith("file_size_mb"):
        return f"{value:.2f} MB"
    if "/" in name:
        return f"{value:.4g}"
    return f"{value:g}"


class RequestValidator:
    """Checks request bodies for one model; images are looked at through `inspector`."""

    def __init__(self, model: Model, inspector: ImageInspector):
        self.model = model
        self.inspector = inspector
        self.unchecked: set[str] = set()  # remote images not fetched (offline)
        schema = model.input_schema
        base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        types = base.TYPE_CHECKER.redefine(wire.FLOAT_TYPE,
                                           lambda checker, x: checker.is_type(x, "number"))
        cls = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # unannotated in types-jsonschema
            base, {"validations": self._validations}, type_checker=types)
        checker = FormatChecker()
        for fmt, kind in wire.MEDIA_FORMATS.items():
            check = self._image_uri if kind == "image" else self._media_uri
            checker.checks(fmt, raises=ImageProblem)(check)
        self.whole = cls(schema, format_checker=checker)
        self.per_property = None
        if set(schema) <= _SIMPLE_TOP and "$ref" not in str(schema):
            self.per_property = {name: cls(sub, format_checker=checker)
                                 for name, sub in schema.get("properties", {}).items()}
        self.required = list(schema.get("required", []))
        self.allow_extra = schema.get("additionalProperties", True) is not False
        self.max_length = {}
        for name, sub in schema.get("properties", {}).items():
            text = sub.get("description") or ""
            for pattern, adjust in _LENGTH:
                found = pattern.search(text)
                if found and sub.get("type") == "string" and "maxLength" not in sub:
                    self.max_length[name] = (int(found.group(1)) + adjust, found.group(0))
        self._memo: dict[tuple[str, str], list[tuple[Path_, str]]] = {}

    # --- the extensions -------------------------------------------------------------------
    def _image_uri(self, value: object) -> bool:
        if isinstance(value, list):  # `format: image_uris` on the array itself
            return all(self._image_uri(v) for v in value)
        if not isinstance(value, str):
            return True
        info = self.inspector.get(value)  # raises ImageProblem
        if info is None:
            self.unchecked.add(value)
            return True
        if info.mime is None:
            raise ImageProblem(f"is a {info.format} image; the model takes JPEG or PNG")
        return True

    @staticmethod
    def _media_uri(value: object) -> bool:
        """A video or audio input: a URL or data: URI (local files are sent for images only)."""
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and kind_of(v) == "file":
                raise ImageProblem("is a local file; video and audio inputs are sent as "
                                   "https URLs or data: URIs")
        return True

    def _validations(self, validator: Any, rules: list[str], instance: Any,
                     schema: dict[str, Any]) -> Iterator[ValidationError]:
        items = schema.get("items")
        kind = media_kind(schema) or (media_kind(items) if isinstance(items, dict) else None)
        if kind not in ("image", None) or not isinstance(rules, list):
            return  # only images are measured here (a video is not fetched to be judged)
        items = instance if isinstance(instance, list) else [instance]
        for i, item in enumerate(items):
            if not isinstance(item, str):
                continue
            try:
                info = self.inspector.get(item)
            except ImageProblem:
                continue  # the format check reports it
            if info is None:
                continue
            for rule in rules:
                message = self._apply(rule, info)
                if message:
                    path = [i] if isinstance(instance, list) else []
                    yield ValidationError(message, path=path, validator="validations",
                                          validator_value=rule, instance=item)

    @staticmethod
    def _apply(rule: Any, info: Any) -> str | None:
        if not isinstance(rule, dict):
            return None
        match = _RULE.match(str(rule.get("validation_rule", "")))
        text = rule.get("validation_error") or f"fails {rule.get('validation_rule')}"
        if not match:
            return None
        metric, op = match.groups()
        value = image_metric(metric, info)
        if value is None:
            return None
        bound = rule.get("validation_value")
        if not isinstance(bound, (int, float)):
            return None
        if _OPS[op](value, bound):
            return None
        return f"{text} (it is {_show_metric(metric, value)})"

    def remembered(self) -> int:
        """How many values and images this validator keeps answers for (a long-lived user,
        such as the simulator, starts a fresh one past a bound)."""
        return len(self._memo) + len(self.inspector)

    # --- checking -------------------------------------------------------------------------
    def errors(self, request: dict[str, Any]) -> list[tuple[Path_, str]]:
        """(path inside the request, message) for every problem of one body."""
        if self.per_property is None:
            found: list[tuple[Path_, str]] = [(tuple(e.absolute_path), self._message(e))
                                              for e in self.whole.iter_errors(request)]
            for name, value in request.items():
                found.extend(self._too_long(name, value))
            return found
        out: list[tuple[Path_, str]] = []
        for name in self.required:
            if name not in request:
                out.append(((name,), f"{MISSING} {name!r}"))
        for name, value in request.items():
            sub = self.per_property.get(name)
            if sub is None:
                if not self.allow_extra:
                    out.append(((name,), f"{name!r} is not an input of {self.model.id}"))
                continue
            key = (name, _key(value))
            known = self._memo.get(key)
            if known is None:
                known = [((name, *e.absolute_path), self._message(e, name))
                         for e in sub.iter_errors(value)]
                known.extend(self._too_long(name, value))
                if len(self._memo) < 1_000_000:
                    self._memo[key] = known
            out.extend(known)
        return out

    def _too_long(self, name: str, value: Any) -> list[tuple[Path_, str]]:
        limit = self.max_length.get(name)
        if limit and isinstance(value, str) and len(value) > limit[0]:
            return [((name,), f"{name} is {len(value)} characters; the model says "
                              f"\"{limit[1]}\"")]
        return []

    def _message(self, e: ValidationError, name: str | None = None) -> str:
        field = _field(name, e.absolute_path)
        v, value, inst = e.validator, rule_value(e), failing_value(e)
        if v == "validations":
            return f"{field} {_brief(inst)}: {e.message}"
        if v == "format":
            cause = e.cause or e.message
            return f"{field} {_brief(inst)}: {cause}"
        if v == "enum":
            return (f"{field}: {_brief(inst)} is not one of {', '.join(map(str, value))}"
                    + enum_near(inst, value))
        if v == "type":
            return f"{field}: expected {value}, got {type(inst).__name__} {_brief(inst)}"
        node = node_schema(e)
        if v in ("minItems", "maxItems") and node.get("minItems") == node.get("maxItems"):
            return (f"{field}: takes exactly {value} item{'s' if value != 1 else ''} "
                    f"(got {len(inst)})")
        if v == "minItems":
            return f"{field}: needs at least {value} items (got {len(inst)})"
        if v == "maxItems":
            return f"{field}: takes at most {value} items (got {len(inst)})"
        if v == "required":
            return f"{field}: {e.message}"
        return f"{field}: {e.message}"


def _field(name: str | None, path: Any) -> str:
    text = name or ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "request"


def _brief(value: Any) -> str:
    if isinstance(value, str):
        if kind_of(value) == "data":
            return repr(value[:30] + "...")
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return repr(value)


def _key(value: Any) -> Any:
    if isinstance(value, list):
        return ("l",) + tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return ("d",) + tuple(sorted((k, _key(v)) for k, v in value.items()))
    return (type(value).__name__, value)
