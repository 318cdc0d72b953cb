"""Bradley–Terry scores from votes (pipeline.report.ratings) against known answers, and the
ratings file (pipeline.job.ratings): durable lines, a torn last vote skipped and cut off."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from pipeline.errors import FormatError
from pipeline.job.ratings import append_vote, read_votes, vote
from pipeline.report.ratings import fit, ratings_of, tally


def votes_of(*triples: tuple[str, str, str]) -> list[dict]:
    return [vote("r", a, b, w) for a, b, w in triples]


def test_two_clips_strengths_are_their_win_ratio() -> None:
    """Without a prior, a beating b 3 times in 4 gives p_a / p_b = 3 (the MLE)."""
    scores = fit(tally(votes_of(*[("a", "b", "a")] * 3, ("a", "b", "b"))), prior=0)
    assert scores["a"][0] - scores["b"][0] == pytest.approx(math.log(3), abs=1e-6)


def test_a_tie_is_half_a_win_each() -> None:
    """Two ties and one win for a: like 2 wins to 1 (p_a / p_b = 2)."""
    scores = fit(tally(votes_of(("a", "b", "tie"), ("b", "a", "tie"), ("a", "b", "a"))),
                 prior=0)
    assert scores["a"][0] - scores["b"][0] == pytest.approx(math.log(2), abs=1e-6)


def test_the_fit_solves_the_likelihood_equations() -> None:
    """For each clip, its wins equal the wins the fitted strengths expect (the MLE's
    condition), on random votes of six clips with known strengths; the order is recovered."""
    rng, true = random.Random(3), [0.0, 0.5, 1.0, 1.5, -0.5, 2.0]
    votes = []
    for _ in range(600):
        i, j = rng.sample(range(6), 2)
        won = rng.random() < 1 / (1 + math.exp(true[j] - true[i]))
        votes.append(vote("r", str(i), str(j), "a" if won else "b"))
    t = tally(votes)
    s = {k: math.exp(v[0]) for k, v in fit(t, prior=0).items()}
    for i in s:
        expected = sum(n * s[i] / (s[i] + s[j if i == x else x])
                       for (x, j), n in t.pairs.items() if i in (x, j))
        assert t.wins[i] == pytest.approx(expected, rel=1e-6)
    assert sorted(s, key=s.get) == ["4", "0", "1", "2", "3", "5"]


def test_choix_agrees_when_installed() -> None:
    """The same maximum-likelihood strengths as choix's MM (centred), when choix is there."""
    choix = pytest.importorskip("choix")
    rng = random.Random(7)
    data, votes = [], []
    for _ in range(300):
        i, j = rng.sample(range(5), 2)
        w, lo = (i, j) if rng.random() < 0.3 + 0.1 * i else (j, i)
        data.append((w, lo))
        votes.append(vote("r", str(i), str(j), "a" if w == i else "b"))
    theirs = choix.mm_pairwise(5, data, alpha=0, tol=1e-10, max_iter=100_000)
    mine = [fit(tally(votes), prior=0)[str(i)][0] for i in range(5)]
    mean = sum(mine) / 5
    assert [x - mean for x in mine] == pytest.approx(list(theirs), abs=1e-4)


def test_ratings_rank_every_voted_clip_and_stay_finite() -> None:
    """A clip that won every vote still gets a finite score (the prior); ranks from 1, with
    votes, wins, losses, ties and an uncertainty that shrinks with more votes."""
    r = ratings_of(votes_of(("a", "b", "a"), ("a", "c", "a"), ("b", "c", "tie"),
                            ("b", "c", "a")))  # winner "a": the first named, b
    assert [r[k]["rank"] for k in "abc"] == [1, 2, 3]
    assert {k: r["a"][k] for k in ("votes", "wins", "losses", "ties")} == {
        "votes": 2, "wins": 2, "losses": 0, "ties": 0}
    assert r["c"]["ties"] == 1 and math.isfinite(r["a"]["score"]) and r["a"]["score"] > 0
    more = ratings_of(votes_of(*[("a", "b", "a"), ("a", "b", "b")] * 10))
    assert more["a"]["uncertainty"] < r["a"]["uncertainty"]


def test_votes_are_lines_and_a_torn_vote_is_lost_alone(tmp_path: Path) -> None:
    """A torn last line (a kill mid-write) is skipped by readers and cut off before the next
    vote; a line in another format is refused, naming the file."""
    path = tmp_path / "ratings.jsonl"
    append_vote(path, vote("ana", "a", "b", "a"))
    with open(path, "ab") as fh:
        fh.write(b'{"format": 1, "rater": "ben", "a": "c"')  # killed mid-vote
    assert [v["rater"] for v in read_votes(path)] == ["ana"]
    append_vote(path, vote("ben", "b", "c", "tie"))
    assert [v["rater"] for v in read_votes(path)] == ["ana", "ben"]
    assert all(json.loads(x) for x in path.read_text().splitlines())
    path.write_text(json.dumps({"format": 2, "rater": "x", "a": "a", "b": "b",
                                "winner": "a"}) + "\n")
    with pytest.raises(FormatError, match="format 2"):
        read_votes(path)
