"""The run's slots and stop policies: how many may be live (the canary narrows it), the
refusal breaker, insufficient balance, and what each refusal tells the user to do."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.run import advice
from pipeline.run.control import Control
from pipeline.run.stopping import RefusalBreaker


def test_the_canary_narrows_the_slots_until_proven() -> None:
    """While a canary is unproven only its cells may be live; once proven, a waiting cell
    gets its slot at once and the limit is the concurrency."""
    async def scenario() -> list[str]:
        slots = Control(4, canary=1).pool
        seen = [f"limit {slots.limit()}"]
        assert await slots.take()  # the canary's cell
        waiter = asyncio.create_task(slots.take())
        await asyncio.sleep(0.05)
        seen.append(f"second waits: {not waiter.done()}")
        await slots.canary_proven()
        assert await asyncio.wait_for(waiter, 1.0)
        seen.append(f"limit {slots.limit()}, live {slots.live}")
        return seen

    assert asyncio.run(scenario()) == ["limit 1", "second waits: True", "limit 4, live 2"]


def test_a_canary_of_several_cells_lets_that_many_be_live() -> None:
    """run.canary 3: three cells live at once, never more than the concurrency."""
    assert Control(8, canary=3).pool.limit() == 3
    assert Control(2, canary=3).pool.limit() == 2
    assert Control(8).pool.limit() == 8


@pytest.mark.parametrize("answers,stops_at", [
    ([(400, 400000)] * 3, 3),  # the same refusal three times in a row
    ([(400, 400000), (400, 400000), (422, 422001), (400, 400000)], None),  # another breaks it
    ([(400, 400000), (400, 400000), "ok", (400, 400000), (400, 400000)], None),  # so does a yes
    ([(400, 400000), (400, 400000), "ok"] + [(422, 422001)] * 3, 6),
    ([(200, 400000)] * 2 + [(400, 400000)], None),  # a 200-quirk error is another status
])
def test_the_refusal_breaker_counts_the_same_refusal_in_a_row(answers, stops_at) -> None:
    """The breaker trips on the `limit`-th consecutive refusal with one status and code."""
    breaker = RefusalBreaker(3)
    tripped = None
    for i, answer in enumerate(answers, 1):
        if answer == "ok":
            breaker.answered()
        elif breaker.refused(*answer) is not None and tripped is None:
            tripped = i
    assert tripped == stops_at


def test_a_breaker_of_zero_never_trips() -> None:
    """run.stop_after_refusals: 0 turns the breaker off."""
    breaker = RefusalBreaker(0)
    assert all(breaker.refused(400, 1) is None for _ in range(10))


def refusals(status: int, code: object, n: int, limit: int = 3) -> str | None:
    async def scenario() -> str | None:
        stopping = Control(4, refusals=RefusalBreaker(limit)).stopping
        for _ in range(n):
            stopping.refused(status, code, "InvalidInput: no", "do this")
        return stopping.stopped
    return asyncio.run(scenario())


def test_repeated_refusals_stop_submitting_naming_the_code_and_the_cells() -> None:
    """Three refusals in a row stop submitting with one line naming the refusal, how many
    cells it failed and what to do; two do not."""
    assert refusals(400, 400000, 2) is None
    assert refusals(400, 400000, 3) == ("3 submits in a row were refused with HTTP 400, "
                                        "error_code 400000 (3 cells failed): InvalidInput: no; "
                                        "do this")
    # submits already under way when it stopped: the line counts every cell the row failed
    assert refusals(400, 400000, 6) == ("6 submits in a row were refused with HTTP 400, "
                                        "error_code 400000 (6 cells failed): InvalidInput: no; "
                                        "do this")


@pytest.mark.parametrize("status,code", [(400, 400002), (402, None), (200, "400002")])
def test_insufficient_balance_stops_at_the_first_refusal(status, code) -> None:
    """error_code 400002 or HTTP 402 stops submitting at once, saying to top up."""
    stopped = refusals(status, code, 1)
    assert stopped is not None and "insufficient balance" in stopped
    assert advice.is_balance(status, code)


@pytest.mark.parametrize("status,code,message,data_uri,expected", [
    (400, 400000, "image_urls[0]: data URIs are not accepted", True, "run.local_images: refuse"),
    (422, 422001, "Validation Error: image_urls.0: invalid url", True, "https URLs"),
    (422, 422001, "Validation Error: resolution: not one of", False, "fix the field it names"),
    (400, 400001, "InvalidResourceIdentifier: unknown model", False, "pipeline models check"),
    (400, 400002, "InsufficientResources", False, "top up your RunComfy balance"),
    (409, None, "conflict", False, "--retry-failed"),
])
def test_each_refusal_says_what_to_do(status, code, message, data_uri, expected) -> None:
    """The advice names the fix: https URLs for a refused data: URI (only when one was sent),
    the field for a rejected body, the model id, the balance."""
    assert expected in advice.for_refusal(status, code, message, data_uri=data_uri)
