"""Prepare, validate: every request body is checked against its model's input schema.

The catalog schema's nonstandard parts are real validator extensions, not side checks: the
`image_uri`/`image_uris` formats (http(s) URL, `data:` URI or local file; JPEG or PNG by
content), the `video_uri`/`audio_uri` formats (an http(s) URL or a `data:` URI), the
`validations` keyword (file size, resolution and aspect-ratio rules on images, with the
schema's own error texts) and the type `"float"` (a JSON number). Limits written only in a
field's description ("less than 800 characters") are enforced too. The simulator refuses
bodies with this same validator (pipeline.sim.checks), as the real service would.

Speed: a body is checked once per distinct shape. Its shape is the body with every "free"
integer (a property the schema gives only `type: integer` with a minimum and a maximum, named
by nothing else in the schema: see free_integers) that is within its bounds left out; a body
whose shape a valid body had is valid too, so a sweep over seeds is checked once per distinct
everything-but-the-seed. An invalid body is always checked whole (its messages are the same as
ever). And when the schema's top level only has properties and `required` (no cross-field
keywords), each property value is checked once per distinct value and the answer reused.
"""

from __future__ import annotations

import json
import math
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
# what a property may say and still be free (pipeline.prepare.validate.free_integers)
_FREE_KEYS = {"type", "minimum", "maximum", "title", "description", "default", "examples"}
# keywords that judge an object's property values without naming the property: where one
# applies to the body itself, no property is free
_WHOLE = {"patternProperties", "propertyNames", "unevaluatedProperties", "enum", "const",
          "dependencies", "dependentSchemas", "dependentRequired", "$ref", "$dynamicRef"}
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
        self.free = free_integers(schema)  # name -> (minimum, maximum)
        self._valid: set[tuple[Any, ...]] = set()  # shapes of valid bodies (see _shape)

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
        return len(self._memo) + len(self._valid) + len(self.inspector)

    # --- checking -------------------------------------------------------------------------
    def errors(self, request: dict[str, Any]) -> list[tuple[Path_, str]]:
        """(path inside the request, message) for every problem of one body."""
        shape = self._shape(request)
        if shape in self._valid:
            return []
        found = self.check(request)
        if not found and len(self._valid) < 1_000_000:
            self._valid.add(shape)
        return found

    def _shape(self, request: dict[str, Any]) -> tuple[Any, ...]:
        """The body with each free integer within its bounds left out (its key kept): bodies of
        one shape are all valid or all invalid."""
        free = self.free
        parts: list[Any] = []
        for name, value in request.items():
            kind = type(value)
            if kind is str:  # the most common: as is (no str equals another type's value)
                parts.append((name, value))
                continue
            if kind is int and name in free:
                low, high = free[name]
                if low <= value <= high:
                    parts.append(name)
                    continue
            if kind is int or kind is float or kind is bool:  # 1, 1.0 and True kept apart
                parts.append((name, kind, value))
            else:
                parts.append((name, _key(value)))
        return tuple(parts)

    def check(self, request: dict[str, Any]) -> list[tuple[Path_, str]]:
        """`errors` without the shortcut: the body checked against the schema."""
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


def free_integers(schema: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The top-level properties whose value cannot change whether a body is valid while it is an
    integer within [minimum, maximum] (a seed, say): each is `{"type": "integer", "minimum": A,
    "maximum": B}` (either bound may be left out; a title, description, default or examples
    aside), and nothing else in the
    schema names it (no if/then, dependencies, enum, required elsewhere than at the top...),
    nor judges the body's values wholesale (patternProperties, an additionalProperties schema,
    a const or enum of the whole body, a $ref) where it applies to the body itself."""
    props = schema.get("properties")
    if not isinstance(props, dict) or _judges_whole(schema):
        return {}
    out: dict[str, tuple[float, float]] = {}
    for name, sub in props.items():
        if not isinstance(sub, dict) or not set(sub) <= _FREE_KEYS or \
                sub.get("type") != "integer":
            continue
        low, high = sub.get("minimum", -math.inf), sub.get("maximum", math.inf)
        if not all(type(x) is int or x in (-math.inf, math.inf) for x in (low, high)):
            continue
        rest = {**schema, "properties": {k: v for k, v in props.items() if k != name},
                "required": [r for r in schema.get("required", []) if r != name]}
        if name not in json.dumps(rest, default=str):  # named nowhere else, even in a text
            out[name] = (low, high)
    return out


def _judges_whole(node: Any) -> bool:
    """Whether a schema node applying to the body itself (the top, and what its allOf, anyOf,
    oneOf, not, if, then and else apply) has a keyword that judges property values without
    naming the property."""
    if not isinstance(node, dict):
        return not isinstance(node, bool)
    if _WHOLE & set(node) or isinstance(node.get("additionalProperties"), dict):
        return True
    parts: list[Any] = [node.get(k) for k in ("not", "if", "then", "else") if k in node]
    for k in ("allOf", "anyOf", "oneOf"):
        parts.extend(node.get(k) or [])
    return any(_judges_whole(p) for p in parts)


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
