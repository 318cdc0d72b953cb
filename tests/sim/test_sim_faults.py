"""Fault injection over real HTTP: each fault is observable, counted, and reproducible by seed."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from simcalls import wait_result

from pipeline import wire
from pipeline.sim import SimConfig, Simulator

MODEL = "bytedance/dreamina-3-0/image-to-video"
SUBMIT = wire.SUBMIT_PATH.format(model_id=MODEL)
AUTH = {"Authorization": "Bearer test-token"}
FAST = dict(gen_time=(0.05, 0.05), fetch_timeout=0.0)


@pytest.fixture
def served(sim_client: Callable[..., tuple[Simulator, httpx.Client]]
           ) -> Callable[..., tuple[Simulator, httpx.Client]]:
    """`served(**overrides)`: a simulator with FAST settings under the overrides, and a client."""
    return functools.partial(sim_client, **FAST)


def body() -> dict[str, Any]:
    return {"prompt": f"p-{uuid.uuid4()}", "image_urls": ["https://example.invalid/in.jpg"]}


def test_error_rate_gives_5xx_on_every_api_route(served) -> None:
    """error_rate=1 makes submit, status, result, cancel and catalog calls answer 5xx."""
    sim, client = served(error_rate=1.0, submit_error_accept_fraction=0.0)
    codes = [client.post(SUBMIT, json=body()).status_code,
             client.get(wire.STATUS_PATH.format(request_id="x")).status_code,
             client.get(wire.RESULT_PATH.format(request_id="x")).status_code,
             client.post(wire.CANCEL_PATH.format(request_id="x")).status_code,
             client.get(wire.MODEL_PATH.format(model_id=MODEL)).status_code]
    assert all(code in (500, 502, 503, 504) for code in codes), codes
    stats = sim.stats()
    assert stats["faults"]["error"] == 5 and stats["submissions_accepted"] == 0


def test_submit_5xx_can_be_accepted_server_side(served) -> None:
    """An ambiguous submit 5xx (500/502/504) may have been accepted: stats show it accepted."""
    sim, client = served(error_rate=1.0, submit_error_accept_fraction=1.0)
    codes = [client.post(SUBMIT, json=body()).status_code for _ in range(12)]
    accepted = sum(code != 503 for code in codes)
    assert accepted > 0 and set(codes) <= {500, 502, 503, 504}
    stats = sim.stats()
    assert stats["submissions_accepted"] == accepted
    assert stats["submissions_accepted_unacknowledged"] == accepted
    assert sum(stats["requests_by_state"].values()) == accepted


def test_rate_limit_is_429_with_retry_after(served) -> None:
    """rate_limit_rate=1 answers 429 with the configured Retry-After and a 429 error body."""
    sim, client = served(rate_limit_rate=1.0, retry_after=0.5)
    answer = client.get(wire.STATUS_PATH.format(request_id="x"))
    assert answer.status_code == 429
    assert float(answer.headers[wire.RETRY_AFTER_HEADER]) == 0.5
    assert answer.json()[wire.ERROR_CODE] == wire.ERROR_CODE_RATE_LIMITED
    assert sim.stats()["faults"]["rate_limit"] == 1


def test_drop_before_processing_is_a_transport_error_and_not_accepted(served) -> None:
    """A drop before processing reaches httpx as a transport error and nothing is queued.
    Which one depends on when the close meets the client's write: a closed connection without
    an answer (RemoteProtocolError), or a reset (ReadError) when the client was still sending."""
    sim, client = served(drop_rate=1.0, drop_after_fraction=0.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(SUBMIT, json=body())
    stats = sim.stats()
    assert stats["faults"]["drop_before"] == 1 and stats["submissions_accepted"] == 0


def test_drop_after_processing_accepts_the_submit_the_client_never_hears_of(served) -> None:
    """A drop after processing is a transport error in httpx, yet the submit was accepted."""
    sim, client = served(drop_rate=1.0, drop_after_fraction=1.0)
    for _ in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post(SUBMIT, json=body())
    stats = sim.stats()
    assert stats["faults"]["drop_after"] == 2
    assert stats["submissions_accepted"] == stats["submissions_accepted_unacknowledged"] == 2


def test_slow_rate_delays_answers(served) -> None:
    """slow_rate=1 delays each API answer by slow_delay seconds, and the answer is still right."""
    sim, client = served(slow_rate=1.0, slow_delay=0.4)
    t0 = time.monotonic()
    answer = client.post(SUBMIT, json=body())
    assert time.monotonic() - t0 >= 0.4 and answer.status_code == 200
    assert sim.stats()["faults"]["slow"] == 1


def test_fail_rate_ends_requests_failed_with_an_error_string(served) -> None:
    """fail_rate=1 makes every generation end failed with an error message and no output."""
    sim, client = served(fail_rate=1.0)
    rid = client.post(SUBMIT, json=body()).json()[wire.REQUEST_ID]
    done = wait_result(client, rid)
    assert done["status"] == wire.FAILED and "simulated" in done[wire.ERROR]
    assert sim.stats()["faults"]["fail"] == 1


def test_download_faults_404_for_a_while_or_cut_short(served) -> None:
    """download_fault_rate=1 gives a temporary 404 and Content-Length-short bodies (httpx
    errors)."""
    sim, client = served(download_fault_rate=1.0, download_outage=0.3, seed=2)
    kinds = set()
    for _ in range(4):
        rid = client.post(SUBMIT, json=body()).json()[wire.REQUEST_ID]
        url = wait_result(client, rid)[wire.OUTPUT]["video"]
        for _ in range(3):
            try:
                answer = httpx.get(url)
                assert answer.status_code == 404
                kinds.add("404")
            except httpx.RemoteProtocolError as exc:
                assert "complete message body" in str(exc)
                kinds.add("truncated")
    assert kinds == {"404", "truncated"}
    faults = sim.stats()["faults"]
    assert faults["download_404"] > 0 and faults["download_truncated"] > 0


def test_outage_ends_and_the_file_downloads_whole(served) -> None:
    """After a download outage the same file is served complete (when faults are rare)."""
    sim, client = served(download_fault_rate=0.0)
    rid = client.post(SUBMIT, json=body()).json()[wire.REQUEST_ID]
    url = wait_result(client, rid)[wire.OUTPUT]["video"]
    req = sim.app.state.engine._requests[rid]
    # an outage far longer than the look at it takes, ended by hand (no sleep races it)
    req.outage_until, req.outage_used = time.monotonic() + 60, True
    assert httpx.get(url).status_code == 404
    req.outage_until = time.monotonic()
    answer = httpx.get(url)
    assert answer.status_code == 200 and len(answer.content) == int(
        answer.headers["content-length"])
    assert sim.stats()["bytes_served"] == len(answer.content)


def fault_trace(served: Callable[..., tuple[Simulator, httpx.Client]], seed: int
                ) -> list[str]:
    """What each of 30 serial calls met, under a seed with every fault at 30%."""
    trace = []
    rates = dict(error_rate=0.3, rate_limit_rate=0.3, drop_rate=0.3, retry_after=0)
    _, client = served(seed=seed, **rates)
    for _ in range(30):
        try:
            trace.append(str(client.get(wire.STATUS_PATH.format(request_id="x")).status_code))
        except httpx.TransportError as exc:
            trace.append(type(exc).__name__)
    return trace


def test_faults_are_reproducible_under_a_seed(served) -> None:
    """Serial calls meet the same faults in the same order under one seed, others under another."""
    first = fault_trace(served, 5)
    assert first == fault_trace(served, 5)
    assert first != fault_trace(served, 6)
    assert {"404", "429", "RemoteProtocolError"} <= set(first)


def test_stop_does_not_wait_out_slow_answers() -> None:
    """Stopping while a slow answer is pending takes well under the slow delay."""
    import threading

    sim = Simulator(SimConfig(slow_rate=1.0, slow_delay=5.0)).start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.get(sim.base_url + wire.STATUS_PATH.format(request_id="x"),
                                     headers=AUTH, timeout=10).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while sim.stats()["faults"]["slow"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the call is being held by the simulator
    sim.stop()
    caller.join(timeout=10)
    assert not caller.is_alive() and outcome == [404]
