"""The choice of a rater's next pair (pipeline.review.pairs): every clip early, never a pair
twice for a rater, the least certain pairs later, other raters' pairs avoided."""

from __future__ import annotations

import random

from pipeline.job.ratings import vote
from pipeline.review.pairs import EARLY_VOTES, next_pair, pair_key

CLIPS = [f"c{i}" for i in range(8)]


def test_every_clip_is_shown_early() -> None:
    """With 8 clips, the first 4 pairs of one rater show all 8 (unseen clips first)."""
    votes: list[dict] = []
    rng = random.Random(0)
    for _ in range(4):
        a, b = next_pair(CLIPS, votes, "ana", rng=rng)
        votes.append(vote("ana", a, b, "a"))
    assert {x for v in votes for x in (v["a"], v["b"])} == set(CLIPS)


def test_no_pair_twice_for_a_rater_and_none_left_at_the_end() -> None:
    """A rater gets all 28 pairs of 8 clips once each, then None; another rater starts anew."""
    votes: list[dict] = []
    rng = random.Random(1)
    while (p := next_pair(CLIPS, votes, "ana", rng=rng)) is not None:
        votes.append(vote("ana", p[0], p[1], "tie"))
    assert len(votes) == 28 == len({pair_key(v["a"], v["b"]) for v in votes})
    assert next_pair(CLIPS, votes, "ben", rng=rng) is not None


def test_after_the_start_close_scores_come_first() -> None:
    """Once every clip has its early votes, a pair of two clips with equal records comes
    before a pair whose order is already clear."""
    votes = []
    # c0 beats everyone; c1..c7 draw among themselves: pairs of two of c1..c7 are uncertain
    for i in range(1, 8):
        votes += [vote("x", "c0", f"c{i}", "a")] * EARLY_VOTES
    for i in range(1, 7):
        votes += [vote("x", f"c{i}", f"c{i + 1}", "tie")] * EARLY_VOTES
    p = next_pair(CLIPS, votes, "ana", rng=random.Random(2))
    assert p is not None and "c0" not in p


def test_a_pair_another_rater_holds_is_avoided() -> None:
    """Two raters at once: the second does not get the pair on the first one's screen."""
    rng = random.Random(3)
    first = next_pair(CLIPS[:3], [], "ana", rng=rng)
    assert first is not None
    for _ in range(20):
        second = next_pair(CLIPS[:3], [], "ben", {pair_key(*first)}, rng=rng)
        assert second is not None and pair_key(*second) != pair_key(*first)


def test_both_orders_come_up() -> None:
    """Left and right are random."""
    rng = random.Random(4)
    seen = {next_pair(["a", "b"], [], "ana", rng=rng) for _ in range(30)}
    assert seen == {("a", "b"), ("b", "a")}
