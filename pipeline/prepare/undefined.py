"""What a template variable that a cell does not set reads as (the sandbox's `undefined`).

As Jinja's StrictUndefined, using its value (printing, iterating, comparing, computing) is an
error; unlike it, a test of it is false (`{% if x %}`, `x or 'y'`), and it is chainable
(`x.y` is unset too) so that `default` applies at the end of a chain. `default`/`d` and
`is defined` work as for any undefined.

`probing()` turns the errors off for one rendering and notes instead the name of every variable
used unset, so that one message can name them all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.runtime import missing

from .render_limits import local


@contextlib.contextmanager
def probing() -> Iterator[set[str]]:
    """While inside, using an unset variable notes its name (in the set yielded) instead of
    failing; attributes a defined value lacks are not variables and are not noted."""
    seen: set[str] = set()
    local.probe = seen
    try:
        yield seen
    finally:
        local.probe = None
        seen.discard(None)


def _uses(result: Any) -> Any:
    """An operation on an undefined value: an UndefinedError, or while probing, `result`
    (the name is noted and rendering goes on, to find every variable used undefined)."""

    def method(self: Unset, *args: Any, **kwargs: Any) -> Any:
        self._fail_with_undefined_error()
        return self if result is _SELF else result

    return method


_SELF = object()


class Unset(jinja2.ChainableUndefined):
    """A variable the cell does not set (see the module's docstring). Undefineds the sandbox
    makes for unsafe attributes stay errors whatever is done with them."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        seen = getattr(local, "probe", None)
        if seen is None or self._undefined_exception is not jinja2.UndefinedError:
            return super()._fail_with_undefined_error()
        if self._undefined_obj is missing and isinstance(self._undefined_name, str):
            seen.add(self._undefined_name)
        else:  # an attribute a defined value lacks: not a variable to list
            seen.add(None)
        return None

    def __bool__(self) -> bool:
        if self._undefined_exception is not jinja2.UndefinedError:
            self._fail_with_undefined_error()
        return False

    __str__ = __html__ = _uses("")
    __iter__ = _uses(iter(()))
    __len__ = _uses(0)
    __eq__ = _uses(False)
    __ne__ = _uses(True)
    __contains__ = _uses(False)
    __int__ = __index__ = _uses(0)
    __float__ = _uses(0.0)
    __complex__ = _uses(0j)
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _uses(_SELF)
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _uses(_SELF)
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = _uses(_SELF)
    __lt__ = __le__ = __gt__ = __ge__ = _uses(False)
    __call__ = _uses(_SELF)

    def __hash__(self) -> int:
        self._fail_with_undefined_error()
        return id(type(self))
