"""Jinja templates in manifests, rendered in a sandbox with undefined variables as errors.

A variable that a cell does not set is an error only where rendering really uses its value
(printed, iterated, compared, computed with), as with Jinja's StrictUndefined; `default` (`d`),
`is defined`, `{% if x %}`, `x or 'y'` and chains like `x.y | default('z')` work, as Jinja users
expect. When rendering fails so, the message names every variable the rendering used undefined
(found by a second, recording pass), with the variables the cell does have.

A manifest may come from someone else, so templates run in Jinja's immutable sandbox, with no
globals beyond a few harmless ones, bounded repetition and a bounded output size (the sandbox
and its bounds: `render_sandbox`). Each distinct template is compiled once, and each rendering
is cached on the values it actually reads, so a 100,000-cell sweep renders its prompt once per
distinct combination of the variables it uses.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta

from .render_limits import Budget, local
from .render_sandbox import ENV, Bound
from .render_sandbox import TemplateProblem as TemplateProblem  # re-export: what render raises
from .undefined import probing

MAX_OUTPUT = 100_000  # characters a rendered string may have


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass
class Template:
    """One compiled template and the variables it reads."""

    source: str
    compiled: jinja2.Template
    variables: tuple[str, ...]
    cache: dict[tuple[object, ...], str]  # rendered text by the values read (see render)


_templates: dict[str, Template] = {}


def compile_template(source: str) -> Template:
    """Compile once per distinct source; a syntax error names its line inside the template."""
    found = _templates.get(source)
    if found is not None:
        return found
    try:
        ast = ENV.parse(source)
        variables = tuple(sorted(meta.find_undeclared_variables(ast)))
        compiled = ENV.from_string(Bound().visit(ast))
    except jinja2.TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if source.count("\n") else ""
        raise TemplateProblem(f"template syntax: {exc.message}{where}") from None
    except TemplateProblem:
        raise
    except (RecursionError, MemoryError):
        raise TemplateProblem("template nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - e.g. Python's own limits on compiled code
        raise TemplateProblem(f"template cannot be compiled: {type(exc).__name__}: {exc}"
                              ) from None
    if len(_templates) > 10_000:
        _templates.clear()
    found = _templates[source] = Template(source, compiled, variables, {})
    return found


def forget_renderings() -> None:
    """Drop the renderings cached so far (the compiled templates stay): a plan's expansion
    calls it when done, so that its cache (up to one string per cell when a prompt reads a
    per-cell seed) is not carried through the run that follows."""
    for tpl in _templates.values():
        tpl.cache.clear()


def render(source: str, context: dict[str, Any]) -> str:
    """Render `source` with `context`; a variable used undefined names every such one at once."""
    if not is_template(source):
        return source
    tpl = compile_template(source)
    try:
        key: tuple[object, ...] | None = tuple([
            (type(x).__name__, x) if type(x) in _SCALARS else _hashable(x)
            for x in [context.get(v, _UNSET) for v in tpl.variables]])
    except TypeError:
        key = None
    if key is not None:
        hit = tpl.cache.get(key)
        if hit is not None:
            return hit
    try:
        out = _generate(tpl, context)
    except jinja2.UndefinedError as exc:
        names = _used_undefined(tpl, context)
        raise TemplateProblem(_undefined_message(names, context, exc), names) from None
    if key is not None and len(tpl.cache) < 100_000:
        tpl.cache[key] = out
    return out


_UNSET = ("__unset__",)  # a variable the context lacks (as _hashable keys it: itself)
_SCALARS = {str, int, float, bool, type(None)}  # keyed as _hashable keys them, without a call


def _generate(tpl: Template, context: dict[str, Any]) -> str:
    """One bounded rendering; an UndefinedError is left to the caller, any other failure is a
    TemplateProblem saying how."""
    local.budget = Budget()
    try:
        pieces, size = [], 0
        for piece in tpl.compiled.generate(context):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise TemplateProblem(f"template renders to more than {MAX_OUTPUT} characters "
                                      f"(limit {MAX_OUTPUT})")
            pieces.append(piece)
        out = "".join(pieces)
    except (TemplateProblem, jinja2.UndefinedError):
        raise
    except (jinja2.exceptions.SecurityError, OverflowError) as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from None
    except MemoryError:
        raise TemplateProblem("template result too large") from None
    except RecursionError:
        raise TemplateProblem("template recursion too deep") from None
    except Exception as exc:  # noqa: BLE001 - a user's template fails in many ways; say how
        raise TemplateProblem(f"template error: {type(exc).__name__}: {_clip(exc)}") from None
    finally:
        local.budget = None
    if len(out) > MAX_OUTPUT:
        raise TemplateProblem(f"template renders to {len(out)} characters (limit {MAX_OUTPUT})")
    return out


def _used_undefined(tpl: Template, context: dict[str, Any]) -> tuple[str, ...]:
    """Every variable a failed rendering uses undefined: found by rendering again with
    undefined values noted instead of raised."""
    with probing() as seen:
        try:
            _generate(tpl, context)
        except Exception:  # noqa: BLE001 - the probe is best effort; what it noted stands
            pass
    return tuple(sorted(n for n in seen if n not in context))


def _undefined_message(names: tuple[str, ...], context: dict[str, Any],
                       exc: jinja2.UndefinedError) -> str:
    if not names:
        return f"template: {exc.message}"
    known = ", ".join(sorted(context)) or "none"
    close = difflib.get_close_matches(names[0], list(context), n=1, cutoff=0.75)
    hint = (f"did you mean {close[0]!r}?" if close else
            f"where only some cells set it: {{{{ {names[0]} | default('...') }}}}")
    return (f"undefined template variable{'s' if len(names) > 1 else ''} "
            f"{', '.join(repr(n) for n in names)} (known: {known}; {hint})")


def _hashable(value: Any) -> Any:
    if value is _UNSET:
        return _UNSET
    if isinstance(value, list):
        return ("__list__",) + tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return ("__dict__",) + tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    hash(value)
    return (type(value).__name__, value)


def _clip(exc: Exception, n: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= n else text[: n - 3] + "..."
