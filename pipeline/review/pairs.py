"""Which two clips a rater sees next in a blind ranking: few votes for a good order.

Early on, every clip is shown: pairs of the clips with the fewest votes come first (two unseen
clips before one), until each has EARLY_VOTES. Then the pairs whose order is least certain:
close scores for their uncertainty (|s_i - s_j| / sqrt(se_i² + se_j²), from the Bradley–Terry
fit of every rater's votes, pipeline.report.ratings) and few votes between the two. A rater
never gets a pair they have judged (in either order), and a pair another rater holds right now
only when nothing else is left. Ties between equal candidates are broken at random (`rng`).
For a large pool the candidates are the pairs among the SAMPLE clips with the fewest votes
and SAMPLE others drawn at random, so a choice stays quick at thousands of clips.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from ..report.ratings import fit, tally

EARLY_VOTES = 2  # votes every clip gets before pairs are chosen by uncertainty
PAIR_WEIGHT = 0.5  # how much one more vote between the same two counts against a pair
SAMPLE = 120
FIT_TOLERANCE = 1e-6  # enough to order candidates


def pair_key(a: str, b: str) -> tuple[str, str]:
    """A pair without its order."""
    return (a, b) if a < b else (b, a)


def judged_by(votes: Iterable[dict[str, Any]], rater: str) -> set[tuple[str, str]]:
    return {pair_key(str(v["a"]), str(v["b"])) for v in votes if v.get("rater") == rater}


def next_pair(clips: Sequence[str], votes: Sequence[dict[str, Any]], rater: str,
              held: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
              rng: random.Random | None = None) -> tuple[str, str] | None:
    """The next pair for `rater` (in random order: left, right), or None when they have judged
    every pair of `clips`. `held`: the pairs other raters have on screen now."""
    rng = rng or random.Random()
    pool = list(dict.fromkeys(clips))
    if len(pool) < 2:
        return None
    seen = judged_by(votes, rater)
    members = set(pool)
    t = tally(v for v in votes if str(v["a"]) in members and str(v["b"]) in members)
    scores = fit(t, tolerance=FIT_TOLERANCE)
    count = {c: sum(t.record.get(c, (0, 0, 0))) for c in pool}
    if len(pool) > 2 * SAMPLE:
        fewest = sorted(pool, key=lambda c: (count[c], rng.random()))[:SAMPLE]
        chosen = set(fewest)
        rest = [c for c in pool if c not in chosen]
        pool = fewest + rng.sample(rest, SAMPLE)
    best, best_key = None, None
    unseen = (0.0, 2.0)  # the fit's score and error of a clip with no vote (prior 1)
    for a, b in combinations(pool, 2):
        key = pair_key(a, b)
        if key in seen:
            continue
        need = max(0, EARLY_VOTES - count[a]) + max(0, EARLY_VOTES - count[b])
        sa, ea = scores.get(a, unseen)
        sb, eb = scores.get(b, unseen)
        closeness = abs(sa - sb) / math.sqrt(ea * ea + eb * eb)
        rank = (key in held, -need, closeness + PAIR_WEIGHT * t.pairs.get(key, 0),
                rng.random())
        if best_key is None or rank < best_key:
            best, best_key = key, rank
    if best is None:
        return None
    return best if rng.random() < 0.5 else (best[1], best[0])
