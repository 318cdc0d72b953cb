"""How a manifest's problems are worded: schema errors said from the failing node (never
`str(ValidationError)`), "did you mean", and values shown as one safe, short line.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema._utils import Unset  # the stubs' type of an error field left unset (no public name)

from ..models.catalogue import schemas_dir
from .yamlsrc import Path_


@functools.lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((schemas_dir() / "manifest.schema.json").read_text())
    return schema


@functools.lru_cache(maxsize=1)
def manifest_validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(manifest_schema())


def node_schema(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    """The failing node's schema ({} for a boolean schema)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


def rule_value(error: jsonschema.ValidationError) -> Any:
    """The failing keyword's value in the schema (a JSON value; None if the error has none)."""
    value = error.validator_value
    return None if isinstance(value, Unset) else value


def failing_value(error: jsonschema.ValidationError) -> Any:
    """The value that failed (a JSON value; None if the error has none)."""
    value = error.instance
    return None if isinstance(value, Unset) else value


def did_you_mean(word: str, options: Iterable[Any], cutoff: float = 0.6) -> str:
    """` (did you mean 'X'?)` for the option nearest to `word`, compared case-insensitively
    (`720p` finds `720P`), or "" when none is near."""
    folded: dict[str, str] = {}
    for option in map(str, options):
        folded.setdefault(option.casefold(), option)
    same = folded.get(str(word).casefold())
    if same is not None and same != word:
        return f" (did you mean {same!r}?)"
    close = difflib.get_close_matches(str(word).casefold(), list(folded), n=1,
                                      cutoff=cutoff)
    return f" (did you mean {folded[close[0]]!r}?)" if close and folded[close[0]] != word else ""


def enum_near(given: Any, allowed: Any) -> str:
    """The did-you-mean of a word that is not one of an enum's words (none for other values):
    only a near one (`720p`: 720P, `1008P`: 1080P; never 480P for 1080P)."""
    words = [w for w in allowed if isinstance(w, str)] if isinstance(allowed, list) else []
    return did_you_mean(given, words, cutoff=0.8) if isinstance(given, str) and words else ""


def describe_errors(error: jsonschema.ValidationError) -> list[tuple[Path_, str, bool]]:
    """(path, message, point-at-key) per problem of one schema error: one per unknown key of a
    mapping (so that all of them are reported at once), else one."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = node_schema(error).get("properties", {})
        extra = [k for k in error.instance if k not in allowed]
        if extra and isinstance(node_schema(error).get("additionalProperties"), bool):
            path = tuple(error.absolute_path)
            return [(path + (key,), unknown_key(key, path, allowed), True) for key in extra]
    path, message, at_key = describe_error(error)
    if len(path) == 2 and path[0] == "matrix" and isinstance(path[1], str) and \
            path[1] not in ("exclude", "include", "rows"):
        home = _home_of(path[1], path[:1])
        if home:  # e.g. `budget:` under matrix: not an axis but a key of run
            message += f"; {path[1]} is a key of {home}, not an axis"
    return [(path, message, at_key)]


def unknown_key(key: str, path: Path_, allowed: Any) -> str:
    """`unknown key ...` with where it belongs (another section of the manifest that has such a
    key), else the nearest allowed key."""
    where = ".".join(str(p) for p in path) or "manifest"
    home = _home_of(key, path)
    if home:
        return f"unknown key {key!r} in {where}: it belongs under {home} ({home}: {{{key}: ...}})"
    return (f"unknown key {key!r} in {where}" + did_you_mean(key, allowed)
            + f"; allowed: {', '.join(sorted(allowed))}")


def _home_of(key: str, path: Path_) -> str | None:
    """The section of the manifest (matrix, run, run.polling) whose keys include `key`."""
    defs = manifest_schema()["$defs"]
    sections = {"matrix": defs["matrix"], "run": defs["run"],
                "run.polling": defs["run"]["properties"].get("polling", {})}
    here = ".".join(str(p) for p in path)
    for name, section in sections.items():
        if name != here and key in section.get("properties", {}):
            return name
    return None


def describe_error(error: jsonschema.ValidationError) -> tuple[Path_, str, bool]:
    """(path, message, point-at-key) for one schema error, built from the failing node."""
    path = tuple(error.absolute_path)
    where = ".".join(str(p) for p in path) or "manifest"
    v, value = error.validator, rule_value(error)
    if v in ("oneOf", "anyOf") and isinstance(error.instance, dict) and error.context:
        # a mapping none of the forms takes: name a key no form knows, with the nearest one
        allowed: dict[str, Any] = {}
        for e in error.context:
            allowed.update(e.schema.get("properties", {}) if isinstance(e.schema, dict) else {})
        extra = [k for k in error.instance if k not in allowed]
        if allowed and extra:
            key = extra[0]
            return path + (key,), (f"unknown key {key!r} in {where}"
                                   + did_you_mean(key, allowed)
                                   + f"; allowed: {', '.join(sorted(allowed))}"), True
    if v in ("oneOf", "anyOf") and error.context:
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        if len(deepest.absolute_path) > len(error.absolute_path):
            return describe_error(deepest)
        kinds = sorted({str(e.validator_value) for e in error.context if e.validator == "type"})
        words = [repr(e.validator_value) for e in error.context if e.validator == "const"]
        if words:  # a number or a word (concurrency: 8 or auto)
            return path, (f"{where}: expected {' or '.join(kinds + words)}, got "
                          f"{show(error.instance)}"), False
        return path, f"{where}: {show(error.instance)} is not valid here" + (
            f" (expected {' or '.join(kinds)})" if kinds else ""), False
    if v == "additionalProperties" and isinstance(error.instance, dict):
        allowed = node_schema(error).get("properties", {})
        extra = sorted(set(error.instance) - set(allowed))
        if extra:
            return path + (extra[0],), unknown_key(extra[0], path, allowed), True
    if v == "required" and isinstance(error.instance, dict):  # (`required` checks mappings only)
        missing = [k for k in value if k not in error.instance]
        return path, f"{where}: missing required key {missing[0]!r}", False
    if v == "enum":
        return path, (f"{where}: {show(error.instance)} is not one of "
                      f"{', '.join(map(str, value))}" + enum_near(error.instance, value)), False
    if v == "type":
        kinds = value if isinstance(value, list) else [value]
        return path, (f"{where}: expected {' or '.join(kinds)}, got "
                      f"{kind_of_value(error.instance)}"), False
    if v == "pattern" and path and path[-1] == "name":
        return path, (f"name: {show(error.instance)} must be letters, digits, '.', '_' or '-' "
                      "(it names the output folder)"), False
    if v == "pattern" and node_schema(error).get("pattern", "").startswith("^[A-Za-z_]"):
        return path, f"{where}: {show(error.instance)} is not a valid variable name", True
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
                "exclusiveMaximum": "<"}[v]
        return path, f"{where}: must be {word} {value} (got {show(error.instance)})", False
    if v in ("minItems", "minProperties"):
        return path, f"{where}: must not be empty", False
    return path, f"{where}: {error.message}", False


def kind_of_value(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), "a value")


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= 60 else text[:57] + "..."
    return printable(text)


def printable(text: str) -> str:
    """`text` with line breaks, control and bidi characters escaped: one safe line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
