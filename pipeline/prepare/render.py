"""Jinja templates in manifests, rendered in a sandbox with undefined variables as errors.

A variable that a cell does not set is an error only where rendering really uses its value
(printed, iterated, compared, computed with), as with Jinja's StrictUndefined; `default` (`d`),
`is defined`, `{% if x %}`, `x or 'y'` and chains like `x.y | default('z')` work, as Jinja users
expect. When rendering fails so, the message names every variable the rendering used undefined
(found by a second, recording pass), with the variables the cell does have.

A manifest may come from someone else, so templates run in Jinja's immutable sandbox, with no
globals beyond a few harmless ones, bounded repetition and a bounded output size. Each distinct
template is compiled once, and each rendering is cached on the values it actually reads, so a
100,000-cell sweep renders its prompt once per distinct combination of the variables it uses.
"""

from __future__ import annotations

import difflib
import operator
import re
from dataclasses import dataclass
from typing import Any, TypeVar

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .render_limits import (
    MAX_INT_BITS,
    MAX_REPEAT,
    MAX_SIZE,
    Budget,
    check,
    int_arg,
    joined_size,
    local,
    printf_size,
    refuse,
    replaced_size,
    tick,
    weight,
)
from .undefined import Unset, probing

MAX_OUTPUT = 100_000  # characters a rendered string may have
# Filters a prompt has no use for, or that only amplify sizes (or, like `random`, would make a
# cell's prompt, hence its id, change from one plan to the next).
REMOVED_FILTERS = ("random", "pprint", "xmlattr", "urlize", "wordwrap", "indent", "center",
                   "batch", "slice", "tojson", "filesizeformat")
_UNSAFE_STR_METHODS = frozenset({"translate", "maketrans", "expandtabs"})
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_N = TypeVar("_N", bound=nodes.Node)

class TemplateProblem(Exception):
    """A template could not be compiled or rendered; the message names what to fix, and
    `undefined` the variables rendering used undefined (if that was the problem)."""

    def __init__(self, message: str, undefined: tuple[str, ...] = ()):
        super().__init__(message)
        self.undefined = undefined


class _Env(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        tick()
        if operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > 100:
                raise refuse("exponent too large")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                    left.bit_length() * right > MAX_INT_BITS:
                raise refuse("the power would be too large a number")
            return operator.pow(left, right)
        if operator_ == "%":
            if isinstance(left, str) and printf_size(left, right) > MAX_SIZE:
                raise refuse(f"%-formatting would make more than {MAX_SIZE:,} characters")
            return operator.mod(left, right)
        if operator_ == "+":
            if isinstance(left, (str, bytes, list, tuple)) and \
                    weight(left) + weight(right) > MAX_SIZE:
                raise refuse(f"joining these would make more than {MAX_SIZE:,} characters")
            return operator.add(left, right)
        seqs = (str, bytes, list, tuple)
        if isinstance(left, seqs) or isinstance(right, seqs):
            seq, n = (left, right) if isinstance(left, seqs) else (right, left)
            if isinstance(n, int) and weight(seq) * n > MAX_REPEAT:
                raise refuse(f"repetition would make {weight(seq) * n} items "
                              f"(limit {MAX_REPEAT})")
        elif isinstance(left, int) and isinstance(right, int) and \
                left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise refuse("the product would be too large a number")
        return operator.mul(left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, jinja2.Undefined):  # chained: never look inside an undefined
            return obj
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, jinja2.Undefined):
            return obj
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, (str, bytes)) and attr in _UNSAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        tick()
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(obj, "__name__", "")
            if name in _WIDTH_METHODS and args:
                int_arg(args[0], f"{name}() width")
            elif name == "replace" and len(args) >= 2 and \
                    replaced_size(owner, *args[:3]) > MAX_SIZE:
                raise refuse(f"replace() would make more than {MAX_SIZE:,} characters")
            elif name == "join" and args and joined_size(owner, args[0]) > MAX_SIZE:
                raise refuse(f"join() would make more than {MAX_SIZE:,} characters")
        return check(super().call(context, obj, *args, **kwargs), "a call's result")

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> Any:
            values = list(args) + list(kwargs.values())
            if args and isinstance(args[0], dict) and value.__name__ == "format_map":
                values = list(args[0].values())
            most = max((weight(v) for v in values), default=0)
            widths = [int(w) for w in re.findall(r"\d+", fmt) if len(w) < 12]
            size = len(fmt) + fmt.count("{") * most + sum(widths)
            if re.search(r"\d{12}", fmt) or ("{" in fmt.partition(":")[2] and any(
                    isinstance(v, int) and abs(v) > MAX_SIZE for v in values)):
                size = MAX_SIZE + 1
            if size > MAX_SIZE:
                raise refuse(f"format() would make more than {MAX_SIZE:,} characters")
            return wrapped(*args, **kwargs)

        return bounded


def _guard_filter(name: str, func: Any) -> Any:
    """`func` with a step, its input's and output's sizes counted, and its amplifiers bounded."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        # the filtered value comes first, after the context/eval context/environment if any
        value_at = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        rest = args[value_at:]
        if rest:
            check(rest[0], f"the input of the {name} filter")
            if name == "replace" and len(rest) >= 3 and \
                    replaced_size(str(rest[0]), *rest[1:4]) > MAX_SIZE:
                raise refuse(f"replace would make more than {MAX_SIZE:,} characters")
            if name == "join" and joined_size(rest[1] if len(rest) > 1 else "", rest[0]) \
                    > MAX_SIZE:
                raise refuse(f"join would make more than {MAX_SIZE:,} characters")
            if name == "format" and isinstance(rest[0], str) and \
                    printf_size(rest[0], tuple(rest[1:]) or kwargs) > MAX_SIZE:
                raise refuse(f"format would make more than {MAX_SIZE:,} characters")
        return check(func(*args, **kwargs), f"the result of the {name} filter")

    guarded.__dict__.update(getattr(func, "__dict__", {}))  # keeps jinja's pass_* marks
    guarded.__name__ = getattr(func, "__name__", name)
    return guarded


@jinja2.pass_context
def _steps(context: Any, iterable: Any, literal: int = 0) -> Any:
    """A for loop's iterable, counting each iteration and the text its body writes."""
    budget = getattr(local, "budget", None)
    for item in iterable:
        tick()
        if budget is not None and literal:
            budget.written += literal
            if budget.written > MAX_SIZE:
                raise refuse(f"the template writes more than {MAX_SIZE:,} characters")
        yield item


@jinja2.pass_context
def _concat(context: Any, parts: list[Any]) -> str:
    """The `~` operator, with the size of its result checked before it is built."""
    tick()
    if sum(weight(p) for p in parts) > MAX_SIZE:
        raise refuse(f"~ would make more than {MAX_SIZE:,} characters")
    return "".join(str(p) for p in parts)


def _finalize(value: Any) -> Any:
    """Every value a template writes: its size is counted against the budget."""
    size = weight(value)
    budget = getattr(local, "budget", None)
    if budget is not None:
        budget.written += size
        if budget.written > MAX_SIZE:
            raise refuse(f"the template writes more than {MAX_SIZE:,} characters")
    elif size > MAX_SIZE:
        raise refuse(f"the template writes more than {MAX_SIZE:,} characters")
    return value


class _Bound(NodeTransformer):
    """Rewrites a parsed template so that loops and `~` go through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateProblem("recursive for loops are not supported in manifest templates")
        self.generic_visit(node)
        literal = sum(len(d.data) for d in _own(node.body, nodes.TemplateData))
        node.iter = nodes.Filter(node.iter, "_pipeline_steps", [nodes.Const(literal)], [],
                                 None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), "_pipeline_concat",
                            [], [], None, None, lineno=node.lineno)


def _own(body: list[nodes.Node], kind: type[_N]) -> list[_N]:
    """Nodes of `kind` in `body`, not counting those inside nested loops."""
    found: list[_N] = []
    for child in body:
        if isinstance(child, nodes.For):
            continue
        if isinstance(child, kind):
            found.append(child)
        found.extend(_own(list(child.iter_child_nodes()), kind))
    return found


def _env() -> _Env:
    env = _Env(undefined=Unset, autoescape=False, keep_trailing_newline=False,
               finalize=_finalize)
    # cycler/joiner/namespace are harmless in the sandbox but have no use in a prompt; `range`
    # stays (the sandbox caps it at 100,000 items).
    for name in ("cycler", "joiner", "namespace", "lipsum", "dict"):
        env.globals.pop(name, None)
    for name in REMOVED_FILTERS:
        env.filters.pop(name, None)
    env.filters = {name: _guard_filter(name, f) for name, f in env.filters.items()}
    env.filters["_pipeline_steps"] = _steps
    env.filters["_pipeline_concat"] = _concat
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
        compiled = ENV.from_string(_Bound().visit(ast))
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
