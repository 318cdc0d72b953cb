"""Jinja templates in manifests, rendered in a sandbox with undefined variables as errors.

A manifest may come from someone else, so templates run in Jinja's immutable sandbox, with no
globals beyond a few harmless ones, bounded repetition and a bounded output size. Each distinct
template is compiled once, and each rendering is cached on the values it actually reads, so a
100,000-cell sweep renders its prompt once per distinct combination of the variables it uses.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 100_000  # characters a rendered string may have
MAX_REPEAT = 100_000  # a string or list may be repeated up to this length by `*`


class TemplateProblem(Exception):
    """A template could not be compiled or rendered; the message names what to fix."""


class _Env(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > 100:
                raise jinja2.exceptions.SecurityError("exponent too large")
            return operator.pow(left, right)
        if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            seq, n = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(n, int) and len(seq) * n > MAX_REPEAT:
                raise jinja2.exceptions.SecurityError(
                    f"repetition would make {len(seq) * n} items (limit {MAX_REPEAT})")
        return operator.mul(left, right)


def _env() -> _Env:
    env = _Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    # cycler/joiner/namespace are harmless in the sandbox but have no use in a prompt; `range`
    # stays (the sandbox caps it).
    for name in ("cycler", "joiner", "namespace", "lipsum", "dict"):
        env.globals.pop(name, None)
    return env


ENV = _env()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass
class Template:
    """One compiled template and the variables it reads."""

    source: str
    compiled: jinja2.Template
    variables: tuple[str, ...]
    cache: dict


_templates: dict[str, Template] = {}


def compile_template(source: str) -> Template:
    """Compile once per distinct source; a syntax error names its line inside the template."""
    found = _templates.get(source)
    if found is not None:
        return found
    try:
        ast = ENV.parse(source)
        compiled = ENV.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if source.count("\n") else ""
        raise TemplateProblem(f"template syntax: {exc.message}{where}") from None
    variables = tuple(sorted(meta.find_undeclared_variables(ast)))
    found = _templates[source] = Template(source, compiled, variables, {})
    return found


def render(source: str, context: dict[str, Any]) -> str:
    """Render `source` with `context`; every missing variable is named at once."""
    if not is_template(source):
        return source
    tpl = compile_template(source)
    missing = [v for v in tpl.variables if v not in context and v not in ENV.globals]
    if missing:
        known = ", ".join(sorted(context)) or "none"
        names = ", ".join(repr(m) for m in missing)
        raise TemplateProblem(f"undefined template variable{'s' if len(missing) > 1 else ''} "
                              f"{names} (known: {known})")
    try:
        key = tuple(_hashable(context.get(v)) for v in tpl.variables)
    except TypeError:
        key = None
    if key is not None:
        hit = tpl.cache.get(key)
        if hit is not None:
            return hit
    try:
        out = tpl.compiled.render(context)
    except (jinja2.exceptions.SecurityError, OverflowError) as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template: {exc.message}") from None
    except MemoryError:
        raise TemplateProblem("template result too large") from None
    except Exception as exc:  # a user's template may fail in many ways; say how, in one line
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT:
        raise TemplateProblem(f"template renders to {len(out)} characters (limit {MAX_OUTPUT})")
    if key is not None and len(tpl.cache) < 100_000:
        tpl.cache[key] = out
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return ("__list__",) + tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return ("__dict__",) + tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    hash(value)
    return (type(value).__name__, value)
