"""The Jinja environment manifest templates compile and run in, and what it refuses.

A manifest may come from someone else, so templates run in Jinja's immutable sandbox (`ENV`),
with no globals beyond a few harmless ones and without the filters that only amplify sizes
(`REMOVED_FILTERS`). Every operator, call, filter, loop iteration and written value is a step
of the rendering's budget (`render_limits`), its size judged before it is built; `Bound`
rewrites a parsed template so that its loops and `~` go through that budget too.
`TemplateProblem`, the one error of templates, is here because compiling (`Bound`) raises it.
This module is what a template may do; `render` compiles each template once, renders it with
its caches and says how a rendering failed.
"""

from __future__ import annotations

import operator
import re
from typing import Any, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .render_limits import (
    MAX_INT_BITS,
    MAX_REPEAT,
    MAX_SIZE,
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
from .undefined import Unset

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


class Bound(NodeTransformer):
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
