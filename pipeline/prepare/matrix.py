"""What the keys of a matrix mean, checked before anything is paid for.

GitHub Actions silently ignores some mistakes that cost money here: an `exclude` entry whose key
or value is mistyped drops nothing (the cells meant to be dropped are paid for), an `include`
key that nothing reads and an axis that nothing reads multiply cells that all send the same
request. Each is an error at its own line, with the nearest key or value suggested:

- an axis must be a model input, a variable some template uses, or a key some include entry
  matches on (GitHub Actions' way of attaching values to an axis value); `model` is left to the
  multi-model sweep;
- an `exclude` entry must match at least one combination of the axes;
- each key of an `include` entry must be an axis (or rows column), a model input or a variable
  some template uses.

Rows columns are not held to the first rule: a data file often carries columns (notes, ids)
that no request needs, and zipping them adds no cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ProblemList
from .manifest import Manifest, RandomSeed
from .render import TemplateProblem, compile_template, is_template
from .values import same
from .wording import did_you_mean, show

SHOW_VALUES = 8  # values listed in a message before "and N more"
FREE_AXES = frozenset({"model"})  # axes another part of the sweep gives meaning to


def template_variables(m: Manifest) -> set[str] | None:
    """Every variable some template of the manifest reads: the prompt, the fixed inputs, and
    the input values of the matrix, its rows and include entries (strings are templates);
    None when a template cannot be compiled (what it reads is then unknown)."""
    texts: set[str] = set()
    if m.prompt is not None:
        texts.add(m.prompt)
    _strings(m.inputs, texts)
    for spec in m.sweep.per_model.values():  # model_inputs are templates too
        _strings(spec.inputs, texts)
    for axis in m.axes:
        if axis.is_rows:
            for row in axis.values:
                _strings({k: v for k, v in row.items() if m.is_input(k)}, texts)
        elif m.is_input(axis.name):
            _strings(list(axis.values), texts)
    for entry in m.include:
        _strings({k: v for k, v in entry.items() if m.is_input(k)}, texts)
    found: set[str] = set()
    for text in texts:
        try:
            found.update(compile_template(text).variables)
        except TemplateProblem:  # reported where the template is rendered
            return None
    return found


def _strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        if is_template(value):
            into.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, into)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _strings(v, into)


def check_matrix(m: Manifest, problems: ProblemList) -> set[str]:
    """Report unused axes, exclude entries that drop nothing and include keys nothing reads;
    the names of the unused axes (their cells' twins need no second message)."""
    used = template_variables(m)
    axes = {a.name: a for a in m.axes if not a.is_rows}
    columns = _columns(m)
    included = {k for entry in m.include for k in entry}
    unused: set[str] = set()
    whose = "any model of this sweep" if m.sweep.many else m.model.id
    for i, entry in enumerate(m.exclude):
        _check_exclude(m, i, entry, axes, columns, problems)
    if used is None:  # a template that does not compile is reported; what it reads is unknown
        return unused
    for name in axes:
        if m.is_input(name) or name in used or name in included or name in FREE_AXES:
            continue
        unused.add(name)
        options = sorted(set(m.sweep.input_names()) | used - set(axes))
        hint = did_you_mean(name, options) or (
            f"; use it in a template ({{{{ {name} }}}}) or remove it")
        problems.add(m.loc(("matrix", name), key=True),
                     f"matrix.{name}: {name!r} is neither an input of {whose} nor a "
                     f"variable any template uses, so its values make cells that send the same "
                     f"request{hint}")
    known = set(axes) | set(columns) | set(m.sweep.input_names()) | used | FREE_AXES
    for i, entry in enumerate(m.include):
        for key in entry:
            if key in known:
                continue
            problems.add(m.loc(("matrix", "include", i, key), key=True),
                         f"include entry: {key!r} is neither a matrix axis, an input of "
                         f"{whose} nor a variable any template uses, so it would change "
                         f"nothing" + (did_you_mean(key, sorted(known - FREE_AXES)) or
                                       f"; axes: {listing(sorted(axes) + sorted(columns))}"))
    return unused


def _columns(m: Manifest) -> dict[str, None]:
    """The columns of the rows axis, in first-seen order."""
    out: dict[str, None] = {}
    for axis in m.axes:
        if axis.is_rows:
            for row in axis.values:
                out.update(dict.fromkeys(row))
    return out


def _check_exclude(m: Manifest, i: int, entry: dict[str, Any], axes: dict[str, Any],
                   columns: dict[str, Any],
                   problems: ProblemList) -> None:
    """An exclude entry must drop at least one combination; say which key or value does not."""
    where = ("matrix", "exclude", i)
    for key, value in entry.items():
        if key not in axes and key not in columns:
            names = sorted(axes) + sorted(columns)
            problems.add(m.loc(where + (key,), key=True),
                         f"exclude entry: {key!r} is not a matrix axis, so the entry drops "
                         f"nothing" + (did_you_mean(key, names) or f"; axes: {listing(names)}"))
            return
        if key in axes:
            values = axes[key].values
            if any(isinstance(v, RandomSeed) for v in values):
                problems.add(m.loc(where + (key,)),
                             f"exclude entry: {key} is drawn at random ({{random: N}}), so its "
                             "values cannot be excluded; exclude by another axis")
                return
            if not any(same(v, value) for v in values):
                problems.add(m.loc(where + (key,)), _no_such_value(key, value, values))
                return
    row_part = {k: v for k, v in entry.items() if k in columns}
    if not row_part:
        return
    rows = [row for axis in m.axes if axis.is_rows for row in axis.values]
    if any(all(k in row and same(row[k], v) for k, v in row_part.items()) for row in rows):
        return
    if len(row_part) == 1:
        [(key, value)] = row_part.items()
        problems.add(m.loc(where + (key,)),
                     _no_such_value(key, value, [r[key] for r in rows if key in r]))
    else:
        pairs = ", ".join(f"{k}={show(v)}" for k, v in row_part.items())
        problems.add(m.loc(where), f"exclude entry: no row has {pairs} together, so the entry "
                                   "drops nothing")


def _no_such_value(key: str, value: Any, values: Iterable[Any]) -> str:
    distinct = list(_distinct(values))
    texts = [str(v) for v in distinct]
    return (f"exclude entry: no combination has {key}={show(value)}, so the entry drops "
            f"nothing" + did_you_mean(str(value), texts) + f"; values of {key}: "
            f"{listing(texts)}")


def _distinct(values: Iterable[Any]) -> Iterator[Any]:
    seen: set[str] = set()
    for v in values:
        text = repr(v)
        if text not in seen:
            seen.add(text)
            yield v


def listing(items: list[str], limit: int = SHOW_VALUES) -> str:
    """`a, b, c and N more`: a list cut short says how much is left out."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
