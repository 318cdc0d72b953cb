"""Types of command-line values, for every parser of `pipeline` (argparse `type=`): one
wording of a bad number, whichever command it was given to."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Literal, overload


@overload
def number(low: float | None = None, high: float | None = None, *, whole: Literal[True],
           unit: str = "") -> Callable[[str], int]: ...
@overload
def number(low: float | None = None, high: float | None = None, *, whole: Literal[False] = False,
           unit: str = "") -> Callable[[str], float]: ...
def number(low: float | None = None, high: float | None = None, *, whole: bool = False,
           unit: str = "") -> Callable[[str], float]:
    """A parser of a number (an integer when `whole`) from `low` to `high`, both included."""
    kind = "a whole number" if whole else "a number"
    of = f" of {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}{of}") from None
        if not math.isfinite(value) or (low is not None and value < low) or \
                (high is not None and value > high):
            bounds = (f"from {low:g} to {high:g}" if low is not None and high is not None
                      else f"at least {low:g}" if low is not None else f"at most {high:g}")
            raise argparse.ArgumentTypeError(f"must be {bounds}{of}, got {text}")
        return value

    return parse


positive_int = number(1, whole=True)
probability = number(0, 1)
seconds = number(0, unit="seconds")
