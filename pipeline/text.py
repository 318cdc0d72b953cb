"""How a figure reads to a person, decided once: dollars, durations, times and counts.

Every command, report and the page's settings use these (the page is given strings made here
rather than formatting them itself), so `119.6 s` reads `2m00s` and an hour `1h00m`
everywhere. Nothing here does I/O.
"""

from __future__ import annotations

import time


def money(usd: float | None, digits: int = 2) -> str:
    """Dollars at `digits` decimals (cents by default): `$1,234.50`; None is `unknown`."""
    return "unknown" if usd is None else f"${usd:,.{digits}f}"


def money_exact(usd: float) -> str:
    """Dollars with cents, and four decimals where cents would hide the amount ($0.0125)."""
    return money(usd) if abs(usd - round(usd, 2)) < 1e-9 else money(usd, 4)


def rate(usd: float) -> str:
    """A unit price as a price sheet states it: `$0.05`, `$0.125` (no rounding to cents)."""
    return f"${usd:g}"


def span(seconds: float | None) -> str:
    """A duration to the second: `45s`, `2m00s`, `1h00m` (minutes past an hour, no seconds);
    None is `unknown`."""
    if seconds is None:
        return "unknown"
    whole = int(round(seconds))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def secs(seconds: float | None) -> str:
    """A short duration with a tenth under a minute (`0.8 s`, `12.3 s`), else `span`; None is
    `–` (a table's empty cell)."""
    if seconds is None:
        return "–"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    return span(seconds)


def iso(t: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC to the second (`2026-12-07T06:27:26Z`); None or 0
    (never) is None."""
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def iso_now() -> str:
    """Now, as `iso` writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def local_time(t: float | None = None) -> str:
    """A time on this machine's clock, as a person reads it: `2026-12-07 06:27:26`."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 cell`, `3 cells` (`many`: an irregular plural)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
