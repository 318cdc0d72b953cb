"""The client against the real simulator (pipeline.sim) on an ephemeral port.

Every route, every status path (queued, running, completed, failed, cancelled), every fault
type and every variant switch. Waits are real but short (the simulator's Retry-After and
outages are shrunk), so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pipeline.client import NOT_ACCEPTED, OUTCOME_UNKNOWN, ResultInfo, RunComfyClient
from pipeline.errors import (
    ApiError,
    AuthError,
    DownloadError,
    NotFound,
    SubmitError,
    TransportError,
)

try:
    from pipeline.sim import Simulator
except ImportError as exc:  # pragma: no cover - only while the simulator is being written
    pytest.skip(f"pipeline.sim is not importable yet ({exc})", allow_module_level=True)

av = pytest.importorskip("av")

MODEL = "bytedance/dreamina-3-0/image-to-video"
TOKEN = "contract-token-5e1d"
IMAGE_URL = "https://example.invalid/in.jpg"  # never fetched: fetch_timeout=0 below
FAST = dict(gen_time=(0.1, 0.3), retry_after=0.05, download_outage=0.2, slow_delay=0.4,
            fetch_timeout=0.0)
CLIENT = dict(retry_wait_initial=0.01, retry_wait_max=0.1, retry_attempts=8, retry_timeout=20.0)
_prompts = itertools.count()


@pytest.fixture
def simulator(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """`simulator(**overrides)`: a running simulator with FAST settings under the overrides."""
    return functools.partial(sim_factory, **FAST)


def body(**extra: Any) -> dict[str, Any]:
    """A valid body with a unique prompt (so no two tests' bodies count as duplicates)."""
    return {"prompt": f"boats at dawn #{next(_prompts)}", "image_urls": [IMAGE_URL], **extra}


def run(sim: Simulator, scenario: Any, *, token: str = TOKEN, **client_kw: Any) -> Any:
    """Run `scenario(client)` on a fresh client of this simulator."""
    async def main() -> Any:
        async with RunComfyClient(sim.base_url, token, **{**CLIENT, **client_kw}) as client:
            assert token not in repr(client)
            return await scenario(client)
    try:
        return asyncio.run(main())
    except Exception as exc:  # every error the client raised here is free of the token
        seen: BaseException | None = exc
        while seen is not None:
            assert token not in str(seen) and token not in repr(seen)
            seen = seen.__cause__ or seen.__context__
        raise


async def finish(client: RunComfyClient, request_id: str, seen: list[str] | None = None
                 ) -> ResultInfo:
    """Poll /status until it is finished, then read /result."""
    for _ in range(400):
        info = await client.status(request_id)
        if seen is not None and (not seen or seen[-1] != info.status):
            seen.append(info.status)
        if info.finished:
            return await client.result(request_id)
        await asyncio.sleep(0.03)
    raise AssertionError("never finished")


def probe(path: Path) -> tuple[int, float, int, int]:
    """(frames, fps, width, height) of a video, decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        codec = stream.codec_context
        return frames, float(stream.average_rate), codec.width, codec.height


# -- routes and status paths ----------------------------------------------------------------

@pytest.mark.parametrize("success_word,output_key", list(itertools.product(
    ("succeeded", "completed"), ("video", "videos"))))
def test_success_path_across_variants(tmp_path: Path, success_word: str, output_key: str,
                                      simulator) -> None:
    """submit -> in_progress -> completed -> succeeded/cost -> MP4 download, in every result/output
    variant."""
    sim = simulator(result_success_word=success_word, output_key=output_key)

    async def scenario(client: RunComfyClient) -> Any:
        sub = await client.submit(MODEL, body())
        seen: list[str] = []
        result = await finish(client, sub.request_id, seen)
        info = await client.download(result.video_url, tmp_path / "out.mp4")
        return sub, seen, result, info
    sub, seen, result, info = run(sim, scenario)
    stats, base_url = sim.stats(), sim.base_url
    assert sub.request_id and sub.status_url.startswith(base_url)
    assert seen[0] in ("in_queue", "in_progress") and seen[-1] == "completed"
    assert result.status == "succeeded" and result.video_url.endswith(".mp4")
    assert result.cost == pytest.approx(0.25) and result.created_at and result.finished_at
    assert info.size == info.path.stat().st_size > 1000
    assert stats["submissions_accepted"] == 1 and stats["duplicate_submissions"] == 0


def test_download_opens_with_pyav(tmp_path: Path, simulator) -> None:
    """The downloaded output is a playable H.264 MP4 with the requested frames at 24 fps."""
    sim = simulator()

    async def scenario(client: RunComfyClient) -> Any:
        sub = await client.submit(MODEL, body(number_of_frames=241))
        result = await finish(client, sub.request_id)
        return await client.download(result.video_url, tmp_path / "v.mp4")
    info = run(sim, scenario)
    frames, fps, width, height = probe(info.path)
    assert (frames, fps) == (241, 24.0) and width > 0 and height > 0


def test_queue_positions_fall(tmp_path: Path, simulator) -> None:
    """With capacity 1, later requests are in_queue with a true, decreasing queue_position."""
    # Generations long enough that each look below falls inside one of them whatever the
    # machine's load (no fixed sleep races the simulator's clock).
    sim = simulator(capacity=1, gen_time=2.0)

    async def scenario(client: RunComfyClient) -> Any:
        subs = [await client.submit(MODEL, body()) for _ in range(3)]
        first = [await client.status(s.request_id) for s in subs]
        for _ in range(100):  # until the first is done: the second runs, the third moved up
            if (await client.status(subs[0].request_id)).status != "in_progress":
                break
            await asyncio.sleep(0.05)
        later = await client.status(subs[2].request_id)
        return first, later
    first, later = run(sim, scenario)
    assert [s.status for s in first] == ["in_progress", "in_queue", "in_queue"]
    assert [s.queue_position for s in first] == [None, 1, 2]
    assert later.status == "in_queue" and later.queue_position == 1


@pytest.mark.parametrize("status_on_failure", ["completed", "failed"])
def test_failed_path(status_on_failure: str, simulator) -> None:
    """A failed generation: /status says completed or failed (both are 'finished'), /result failed
    with its error."""
    sim = simulator(fail_rate=1.0, status_on_failure=status_on_failure)

    async def scenario(client: RunComfyClient) -> Any:
        sub = await client.submit(MODEL, body())
        seen: list[str] = []
        return seen, await finish(client, sub.request_id, seen)
    seen, result = run(sim, scenario)
    assert seen[-1] == status_on_failure
    assert result.status == "failed" and result.error.startswith("simulated failure")
    assert result.video_url is None


def test_cancel_queued_and_running(simulator) -> None:
    """Cancel succeeds while queued (then status/result say cancelled) and is not_cancellable once
    running."""
    sim = simulator(capacity=1, gen_time=1.0)

    async def scenario(client: RunComfyClient) -> Any:
        running = await client.submit(MODEL, body())
        queued = await client.submit(MODEL, body())
        return (await client.cancel(queued.request_id), await client.status(queued.request_id),
                await client.result(queued.request_id), await client.cancel(running.request_id))
    cancelled, status, result, refused = run(sim, scenario)
    stats = sim.stats()
    assert cancelled.outcome == "cancelled" and cancelled.cancelled
    assert status.status == "cancelled" and status.finished and result.status == "cancelled"
    assert refused.outcome == "not_cancellable" and not refused.cancelled
    assert stats["cancellations"] == 1


@pytest.mark.parametrize("price_unit", ["second", "output"])
def test_model_entry(price_unit: str, simulator) -> None:
    """The catalog entry carries the configured price."""
    sim = simulator(price_usd=0.07, price_unit=price_unit)
    entry = run(sim, lambda client: client.model_entry(MODEL))
    assert (entry.price_usd, entry.price_unit) == (0.07, price_unit) and entry.note


# -- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("quirk", [False, True])
@pytest.mark.parametrize("auth_status", [401, 400, 403])
def test_bad_token(auth_status: int, quirk: bool, simulator) -> None:
    """A wrong token is AuthError on every route (401, 400+400004, 403, or 200+400004), NOT_ACCEPTED
    on submit."""
    sim = simulator(token="the-right-one", auth_failure_status=auth_status,
                    error_code_quirk=quirk)

    async def scenario(client: RunComfyClient) -> Any:
        errors = []
        for call in (lambda: client.status("abc"), lambda: client.result("abc"),
                     lambda: client.cancel("abc"), lambda: client.model_entry(MODEL)):
            with pytest.raises(AuthError) as info:
                await call()
            errors.append(info.value)
        with pytest.raises(SubmitError) as info:
            await client.submit(MODEL, body())
        return errors, info.value, dict(client.calls)
    errors, submit_error, calls = run(sim, scenario, token="wrong-token")
    assert all(e.error_code == 400004 for e in errors)
    assert submit_error.kind == NOT_ACCEPTED and isinstance(submit_error.error, AuthError)
    assert calls == {"status": 1, "result": 1, "cancel": 1, "model": 1, "submit": 1}  # no retries
    assert all("wrong-token" not in str(e) for e in [*errors, submit_error])


@pytest.mark.parametrize("quirk", [False, True])
@pytest.mark.parametrize("bad,field", [({"prompt": None}, "prompt"),
                                       ({"resolution": "4K"}, "resolution"),
                                       ({"image_urls": []}, "image_urls")])
def test_bad_body(bad: dict, field: str, quirk: bool, simulator) -> None:
    """An invalid body is SubmitError(NOT_ACCEPTED) whose message names the field; nothing is
    queued."""
    sim = simulator(error_code_quirk=quirk)
    payload = {k: v for k, v in {**body(), **bad}.items() if v is not None}
    with pytest.raises(SubmitError) as info:
        run(sim, lambda client: client.submit(MODEL, payload))
    stats = sim.stats()
    err = info.value
    assert err.kind == NOT_ACCEPTED and field in err.message and err.error_code == 422001
    assert err.status_code == (200 if quirk else 422)
    assert stats["submissions_accepted"] == 0


def test_unknown_model(simulator) -> None:
    """An unknown model id is SubmitError(NOT_ACCEPTED) with error_code 400001."""
    sim = simulator()
    with pytest.raises(SubmitError) as info:
        run(sim, lambda client: client.submit("nobody/no-model", body()))
    assert info.value.kind == NOT_ACCEPTED and info.value.error_code == 400001


@pytest.mark.parametrize("quirk", [False, True])
def test_unknown_request_id(quirk: bool, simulator) -> None:
    """An unknown request id is NotFound on status, result and cancel (also as 200+404001)."""
    sim = simulator(error_code_quirk=quirk)

    async def scenario(client: RunComfyClient) -> Any:
        rid = "00000000-0000-4000-8000-000000000000"
        for call in (client.status, client.result, client.cancel):
            with pytest.raises(NotFound) as info:
                await call(rid)
            assert info.value.error_code == 404001
        return dict(client.calls)
    calls = run(sim, scenario)
    assert calls == {"status": 1, "result": 1, "cancel": 1}


def make_image(path: Path, size: tuple[int, int], fmt: str) -> Path:
    Image.new("RGB", size, (30, 90, 200)).save(path, format=fmt)
    return path


@pytest.mark.parametrize("accept", [True, False])
def test_local_image_as_data_uri(tmp_path: Path, accept: bool, simulator) -> None:
    """A local image goes as a data URI: used for the video's aspect ratio, or refused
    (NOT_ACCEPTED) when the service refuses data URIs."""
    make_image(tmp_path / "portrait.png", (360, 640), "PNG")
    sim = simulator(accept_data_uris=accept)

    async def scenario(client: RunComfyClient) -> Any:
        sub = await client.submit(MODEL, body(image_urls=["portrait.png"]), base_dir=tmp_path)
        result = await finish(client, sub.request_id)
        return await client.download(result.video_url, tmp_path / "v.mp4")
    if accept:
        info = run(sim, scenario)
        _, _, width, height = probe(info.path)
        assert height > width  # the portrait input shaped the output
    else:
        with pytest.raises(SubmitError) as err:
            run(sim, scenario)
        assert err.value.kind == NOT_ACCEPTED and "data URI" in err.value.message


# -- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [dict(error_rate=0.4), dict(rate_limit_rate=0.4),
                                   dict(drop_rate=0.3), dict(error_rate=0.3, error_code_quirk=True),
                                   dict(rate_limit_rate=0.3, error_code_quirk=True)])
def test_gets_survive_faults(tmp_path: Path, fault: dict, simulator) -> None:
    """5xx, 429 (Retry-After), dropped connections and the 200-quirk on GETs are retried to
    completion."""
    sim = simulator(capacity=8, **fault)

    async def scenario(client: RunComfyClient) -> Any:
        subs = []
        for _ in range(6):
            try:
                subs.append(await client.submit(MODEL, body()))
            except SubmitError:
                pass  # classification is checked in test_submit_classification_matches_the_truth
        results = [await finish(client, s.request_id) for s in subs]
        return subs, results, dict(client.calls)
    subs, results, calls = run(sim, scenario)
    stats = sim.stats()
    assert subs and all(r.status == "succeeded" for r in results)
    assert sum(v for k, v in calls.items() if k.endswith("_retries")) > 0
    assert sum(stats["faults"].values()) > 0 and stats["duplicate_submissions"] == 0


@pytest.mark.parametrize("fault", [dict(error_rate=0.5), dict(drop_rate=0.5),
                                   dict(rate_limit_rate=0.5), dict(slow_rate=0.5),
                                   dict(error_rate=0.5, error_code_quirk=True)])
def test_submit_classification_matches_the_truth(fault: dict, simulator) -> None:
    """Under faults, every submit the simulator accepted without telling us is classified
    OUTCOME_UNKNOWN, never NOT_ACCEPTED."""
    sim = simulator(capacity=50, seed=7, **fault)

    async def scenario(client: RunComfyClient) -> Any:
        kinds: list[str] = []
        for _ in range(30):
            try:
                await client.submit(MODEL, body())
                kinds.append("ok")
            except SubmitError as err:
                kinds.append(err.kind)
        return kinds, dict(client.calls)
    kinds, calls = run(sim, scenario, timeout=0.2)  # slow answers (0.4 s) time out
    stats = sim.stats()
    assert calls["submit"] == 30  # never retried
    failures = [k for k in kinds if k != "ok"]
    assert failures, "the fault never fired"
    unacknowledged = stats["submissions_accepted"] - kinds.count("ok")
    assert unacknowledged <= kinds.count(OUTCOME_UNKNOWN)
    if "rate_limit_rate" in fault:
        assert set(failures) == {NOT_ACCEPTED} and unacknowledged == 0
    if "slow_rate" in fault:  # a read timeout after sending: we cannot know
        assert set(failures) == {OUTCOME_UNKNOWN}


def test_slow_answers_time_out_and_are_retried(simulator) -> None:
    """A GET slower than the client's timeout raises ReadTimeout inside and is retried to
    success."""
    sim = simulator(slow_rate=0.5, seed=3)

    async def scenario(client: RunComfyClient) -> Any:
        for _ in range(10):
            try:
                sub = await client.submit(MODEL, body())
                break
            except SubmitError:
                continue
        result = await finish(client, sub.request_id)
        return result, dict(client.calls)
    result, calls = run(sim, scenario, timeout=0.2)
    assert result.status == "succeeded" and calls.get("status_retries", 0) > 0


def test_persistent_5xx_ends_in_api_error(simulator) -> None:
    """When every call fails with 5xx, a GET gives up after its attempts with ApiError."""
    sim = simulator(error_rate=1.0)
    with pytest.raises(ApiError) as info:
        run(sim, lambda client: client.status("abc"), retry_attempts=3)
    stats = sim.stats()
    assert info.value.status_code in (500, 502, 503, 504) and stats["calls"]["status"] == 3


def test_persistent_drops_end_in_transport_error(simulator) -> None:
    """When every connection is dropped, a GET gives up with TransportError."""
    sim = simulator(drop_rate=1.0)
    with pytest.raises(TransportError):
        run(sim, lambda client: client.status("abc"), retry_attempts=3)


def test_download_faults_are_retried(tmp_path: Path, simulator) -> None:
    """Outputs that 404 for a while or are cut short are retried until whole, sequentially for a
    seeded run."""
    sim = simulator(download_fault_rate=0.5, seed=5, capacity=8)

    async def scenario(client: RunComfyClient) -> Any:
        subs = [await client.submit(MODEL, body()) for _ in range(5)]
        infos = []
        for i, sub in enumerate(subs):
            result = await finish(client, sub.request_id)
            infos.append(await client.download(result.video_url, tmp_path / f"{i}.mp4"))
        return infos, dict(client.calls)
    infos, calls = run(sim, scenario, retry_attempts=12, not_found_wait=0.1)
    stats = sim.stats()
    assert stats["faults"]["download_404"] + stats["faults"]["download_truncated"] > 0
    assert calls["download"] > 5 and sorted(p.name for p in tmp_path.iterdir()) == [
        f"{i}.mp4" for i in range(5)]
    assert all(probe(info.path)[0] == 121 for info in infos)


def test_truncated_download_leaves_no_file(tmp_path: Path, simulator) -> None:
    """When every download is cut short, download fails and nothing is left under the final name."""
    sim = simulator(download_fault_rate=1.0)

    async def scenario(client: RunComfyClient) -> Any:
        sub = await client.submit(MODEL, body())
        result = await finish(client, sub.request_id)
        await client.download(result.video_url, tmp_path / "out" / "v.mp4")
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError):
        run(sim, scenario, retry_attempts=4)
    assert list((tmp_path / "out").iterdir()) == []


def test_token_never_reaches_downloads(tmp_path: Path, simulator) -> None:
    """The simulator's file route sees no Authorization header, while API routes do."""
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    sim = simulator()

    async def scenario(client: RunComfyClient) -> Any:
        client._http.event_hooks["request"].append(spy)
        client._dl.event_hooks["request"].append(spy)
        sub = await client.submit(MODEL, body())
        result = await finish(client, sub.request_id)
        await client.download(result.video_url, tmp_path / "v.mp4")
    run(sim, scenario)
    files = [r for r in seen if r.url.path.startswith("/files/")]
    api = [r for r in seen if r.url.path.startswith("/v1/")]
    assert files and all("authorization" not in r.headers for r in files)
    assert api and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api)
