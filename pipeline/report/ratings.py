"""Scores from a blind ranking's votes (ratings.jsonl): a Bradley–Terry model.

Each clip i has a strength p_i; i is preferred to j with probability p_i / (p_i + p_j). A tie
counts as half a win to each side. The strengths are the maximum-likelihood ones, found by
Hunter's MM iteration (2004, "MM algorithms for generalized Bradley–Terry models"):

    p_i <- W_i / sum_j n_ij / (p_i + p_j)

(W_i: i's wins, ties as halves; n_ij: the votes between i and j). A clip that won, or lost,
every vote has no finite maximum, so each clip also meets a virtual reference clip of strength
1 once, and draws (`PRIOR` votes, half won): a clip nobody has seen yet stays at 0, and a
clip's score moves with the evidence. The score is ln p_i (0: as good as an unseen clip; +1:
e ≈ 2.7 times as likely to be preferred); its uncertainty is the standard error of ln p_i
from the diagonal of the Fisher information, 1 / sqrt(sum_j n_ij p_i p_j / (p_i + p_j)^2).
The votes of all raters count alike. tests/report/test_ratings.py checks the fit against known
answers (and against the `choix` package when it is installed).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TOP = 10  # the best-rated cells report.md lists
PRIOR = 1.0  # virtual votes of each clip against the reference clip (0: the plain MLE)
TOLERANCE = 1e-9
MAX_ROUNDS = 10_000


@dataclass
class Tally:
    """The votes counted per clip and per pair."""

    wins: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # ties: 1/2
    record: dict[str, list[int]] = field(default_factory=dict)  # id -> [wins, losses, ties]
    pairs: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, a: str, b: str, winner: str) -> None:
        for x in (a, b):
            self.record.setdefault(x, [0, 0, 0])
        self.pairs[(a, b) if a < b else (b, a)] += 1
        if winner == "tie":
            self.wins[a] += 0.5
            self.wins[b] += 0.5
            self.record[a][2] += 1
            self.record[b][2] += 1
        else:
            win, lose = (a, b) if winner == "a" else (b, a)
            self.wins[win] += 1.0
            self.record[win][0] += 1
            self.record[lose][1] += 1


def tally(votes: Iterable[dict[str, Any]]) -> Tally:
    t = Tally()
    for v in votes:
        t.add(str(v["a"]), str(v["b"]), v["winner"])
    return t


def fit(t: Tally, prior: float = PRIOR, tolerance: float = TOLERANCE
        ) -> dict[str, tuple[float, float]]:
    """Per clip: (score ln p, its standard error), by MM iteration until the scores move less
    than `tolerance`. With prior 0 a clip that won or lost everything diverges (do not)."""
    ids = sorted(t.record)
    if not ids:
        return {}
    neighbours: dict[str, list[tuple[str, int]]] = {i: [] for i in ids}
    for (x, y), n in t.pairs.items():
        neighbours[x].append((y, n))
        neighbours[y].append((x, n))
    p = dict.fromkeys(ids, 1.0)
    for _ in range(MAX_ROUNDS):
        moved = 0.0
        for i in ids:
            denominator = sum(n / (p[i] + p[j]) for j, n in neighbours[i])
            denominator += prior / (p[i] + 1.0)
            wins = t.wins[i] + prior / 2
            new = max(wins, 1e-12) / denominator
            moved = max(moved, abs(math.log(new) - math.log(p[i])))
            p[i] = new
        if moved < tolerance:
            break
    out = {}
    for i in ids:
        info = sum(n * p[i] * p[j] / (p[i] + p[j]) ** 2 for j, n in neighbours[i])
        info += prior * p[i] / (p[i] + 1.0) ** 2
        out[i] = (math.log(p[i]), 1.0 / math.sqrt(info) if info > 0 else math.inf)
    return out


def ratings_of(votes: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """report.json's `rating` of every clip with a vote: score (ln strength, 3 decimals), its
    uncertainty, rank (1: best), votes, wins, losses, ties."""
    t = tally(votes)
    scores = fit(t)
    order = sorted(scores, key=lambda i: (-scores[i][0], i))
    out = {}
    for rank, i in enumerate(order, 1):
        w, lo, ti = t.record[i]
        out[i] = {"score": round(scores[i][0], 3), "uncertainty": round(scores[i][1], 3),
                  "rank": rank, "votes": w + lo + ti, "wins": w, "losses": lo, "ties": ti}
    return out


def ratings_head(votes: list[dict[str, Any]], rated: dict[str, dict[str, Any]],
                 best: list[dict[str, Any]]) -> dict[str, Any]:
    """report.json's `ratings`: the votes, the raters, and the TOP best cells of the report
    (`best`, gathered as its cells were read)."""
    return {"votes": len(votes), "raters": sorted({str(v.get("rater")) for v in votes}),
            "rated": len(rated), "model": "bradley-terry",
            "top": sorted(best, key=lambda c: c["rank"])[:TOP]}
