"""The simulator over real HTTP (httpx, ephemeral port): routes, bodies, auth, variants, stats."""

from __future__ import annotations

import functools
import socket
import threading
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
FAST = dict(gen_time=(0.2, 0.2), fetch_timeout=0.0)


@pytest.fixture
def served(sim_client: Callable[..., tuple[Simulator, httpx.Client]]
           ) -> Callable[..., tuple[Simulator, httpx.Client]]:
    """`served(**overrides)`: a simulator with FAST settings under the overrides, and a client."""
    return functools.partial(sim_client, **FAST)


def body(prompt: str = "boats", **extra: Any) -> dict[str, Any]:
    return {"prompt": prompt, "image_urls": ["https://example.invalid/in.jpg"], **extra}


def submit(client: httpx.Client, **extra: Any) -> str:
    answer = client.post(SUBMIT, json=body(prompt=f"p-{uuid.uuid4()}", **extra))
    assert answer.status_code == 200, answer.text
    return str(answer.json()[wire.REQUEST_ID])


def status(client: httpx.Client, rid: str) -> dict[str, Any]:
    answer = client.get(wire.STATUS_PATH.format(request_id=rid))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_submit_answers_absolute_urls_and_a_uuid4(served) -> None:
    """A valid submit answers 200 with a UUID4 request_id and absolute status/result/cancel URLs."""
    sim, client = served()
    answer = client.post(SUBMIT, json=body())
    assert answer.status_code == 200
    data = answer.json()
    rid = data[wire.REQUEST_ID]
    assert uuid.UUID(rid).version == 4
    for key, path in ((wire.STATUS_URL, wire.STATUS_PATH), (wire.RESULT_URL, wire.RESULT_PATH),
                      (wire.CANCEL_URL, wire.CANCEL_PATH)):
        assert data[key] == sim.base_url + path.format(request_id=rid)


def test_queue_positions_decrease_until_completed(served) -> None:
    """With capacity 1, the third request is seen at positions 2 then 1, then running, then done."""
    _, client = served(capacity=1, gen_time=(0.5, 0.5))
    ids = [submit(client) for _ in range(3)]
    seen: list[Any] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s = status(client, ids[2])
        seen.append(s.get(wire.QUEUE_POSITION) if s["status"] == wire.IN_QUEUE else s["status"])
        if s["status"] == wire.COMPLETED:
            break
        time.sleep(0.03)
    compact = [x for i, x in enumerate(seen) if i == 0 or x != seen[i - 1]]
    assert compact == [2, 1, wire.IN_PROGRESS, wire.COMPLETED]
    assert wire.QUEUE_POSITION not in status(client, ids[0])


def test_capacity_is_respected_over_http(served) -> None:
    """No more than `capacity` requests are ever in progress, and the cap is reached."""
    sim, client = served(capacity=2, gen_time=(0.1, 0.3), seed=3)
    ids = [submit(client) for _ in range(8)]
    peak = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        by_state = httpx.get(sim.base_url + "/__sim__/stats").json()["requests_by_state"]
        assert by_state[wire.IN_PROGRESS] <= 2  # one atomic snapshot of the queue
        peak = max(peak, by_state[wire.IN_PROGRESS])
        if by_state[wire.SUCCEEDED] == 8:
            break
        time.sleep(0.01)
    assert peak == 2
    assert [status(client, rid)["status"] for rid in ids] == [wire.COMPLETED] * 8


def test_result_while_running_then_succeeded_with_output_and_times(served) -> None:
    """/result gives the live status without output, then `succeeded`, output.video and times."""
    sim, client = served(gen_time=(1.0, 1.0))
    rid = submit(client)
    early = client.get(wire.RESULT_PATH.format(request_id=rid)).json()
    assert early["status"] == wire.IN_PROGRESS and wire.OUTPUT not in early
    done = wait_result(client, rid)
    assert done["status"] == wire.SUCCEEDED and done[wire.MODEL_ID] == MODEL
    assert done[wire.OUTPUT][wire.OUTPUT_VIDEO] == f"{sim.base_url}/files/{rid}.mp4"
    assert done[wire.CREATED_AT].endswith("Z") and done[wire.FINISHED_AT] > done[wire.CREATED_AT]
    assert wire.COST not in done


@pytest.mark.parametrize("unit,frames,cost", [("second", 121, 0.25), ("second", 241, 0.5),
                                              ("output", 241, 0.05)])
def test_include_cost_reports_the_configured_price(unit: str, frames: int, cost: float,
                                                   served) -> None:
    """?include_cost=true adds `cost`: price per nominal second (5 s/10 s) or per output."""
    _, client = served(price_usd=0.05, price_unit=unit)
    rid = submit(client, number_of_frames=frames)
    done = wait_result(client, rid, params=wire.INCLUDE_COST_PARAM)
    assert done[wire.COST] == pytest.approx(cost)


def test_cost_factor_bills_more_than_the_catalog_says(served) -> None:
    """--cost-factor 1.2: the catalog says $0.05 a second, the result bills 1.2 times that."""
    _, client = served(price_usd=0.05, cost_factor=1.2)
    assert client.get(wire.MODEL_PATH.format(model_id=MODEL)).json()[wire.PRICE_USD] == 0.05
    done = wait_result(client, submit(client), params=wire.INCLUDE_COST_PARAM)
    assert done[wire.COST] == pytest.approx(0.30)


def test_catalog_entry_has_price_fields_and_schema(served) -> None:
    """GET /v1/models/{id} returns the configured price, unit, a note and the input schema."""
    _, client = served(price_usd=0.12, price_unit="output")
    entry = client.get(wire.MODEL_PATH.format(model_id=MODEL)).json()
    assert entry[wire.PRICE_USD] == 0.12 and entry[wire.PRICE_UNIT] == "output"
    assert entry[wire.PRICE_NOTE]
    assert "number_of_frames" in entry[wire.INPUT_SCHEMA]["properties"]


def test_unknown_model_is_400001(served) -> None:
    """Submitting to, or reading, an unknown model answers 400 with error_code 400001."""
    _, client = served()
    for answer in (client.post(wire.SUBMIT_PATH.format(model_id="no/such"), json=body()),
                   client.get(wire.MODEL_PATH.format(model_id="no/such"))):
        assert answer.status_code == 400
        assert answer.json()[wire.ERROR_CODE] == wire.ERROR_CODE_BAD_MODEL


def test_cancel_queued_is_cancelled_and_running_is_not_cancellable(served) -> None:
    """Cancel answers 202: `cancelled` while queued, `not_cancellable` once running."""
    sim, client = served(capacity=1, gen_time=(1.0, 1.0))
    running, queued = submit(client), submit(client)
    a = client.post(wire.CANCEL_PATH.format(request_id=queued))
    b = client.post(wire.CANCEL_PATH.format(request_id=running))
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()[wire.OUTCOME] == wire.OUTCOME_CANCELLED
    assert b.json()[wire.OUTCOME] == wire.OUTCOME_NOT_CANCELLABLE
    assert status(client, queued)["status"] == wire.CANCELLED
    assert client.get(wire.RESULT_PATH.format(request_id=queued)).json()["status"] == \
        wire.CANCELLED
    assert sim.stats()["cancellations"] == 1


def test_unknown_request_id_is_404001_everywhere(served) -> None:
    """Status, result and cancel of an unknown id answer 404 with error_code 404001."""
    _, client = served()
    for method, path in (("GET", wire.STATUS_PATH), ("GET", wire.RESULT_PATH),
                         ("POST", wire.CANCEL_PATH)):
        answer = client.request(method, path.format(request_id=str(uuid.uuid4())))
        assert answer.status_code == 404
        data = answer.json()
        assert data[wire.ERROR_CODE] == wire.ERROR_CODE_NOT_FOUND
        assert data[wire.ERROR_STATUS_CODE] == 404 and data["error_message"]


@pytest.mark.parametrize("pinned,sent,expected", [
    (None, None, 401), (None, "Bearer", 401), (None, "Basic abc", 401),
    (None, "Bearer anything", 200), ("s3cret", "Bearer other", 401),
    ("s3cret", "Bearer s3cret", 200),
])
def test_tokens(pinned: str | None, sent: str | None, expected: int, served) -> None:
    """Any non-empty bearer token passes unless one is pinned; failures are 401 with 400004."""
    _, client = served(token=pinned)
    headers = {"Authorization": sent} if sent is not None else {}
    answer = httpx.post(str(client.base_url) + SUBMIT, json=body(), headers=headers)
    assert answer.status_code == expected
    if expected != 200:
        assert answer.json()[wire.ERROR_CODE] == wire.ERROR_CODE_ACCOUNT


def test_auth_failure_status_variant_400(served) -> None:
    """With auth_failure_status=400 a bad token is HTTP 400 with error_code 400004, on every
    route."""
    _, client = served(auth_failure_status=400, token="t")
    for path in (SUBMIT, wire.STATUS_PATH.format(request_id="x")):
        answer = httpx.request("POST" if path == SUBMIT else "GET", str(client.base_url) + path,
                               json=body(), headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 400
        assert answer.json()[wire.ERROR_CODE] == wire.ERROR_CODE_ACCOUNT


@pytest.mark.parametrize("bad,field", [
    ({"resolution": "4K"}, "resolution"), ({"number_of_frames": 100}, "number_of_frames"),
    ({"image_urls": []}, "image_urls"), ({"prompt": None}, "prompt"),
])
def test_invalid_body_is_422_naming_the_field(bad: dict[str, Any], field: str, served) -> None:
    """A body the schema rejects answers 422/422001 with a detail entry at ["body", field]."""
    sim, client = served()
    answer = client.post(SUBMIT, json={**body(), **bad})
    assert answer.status_code == 422
    data = answer.json()
    assert data[wire.ERROR_CODE] == wire.ERROR_CODE_VALIDATION and field in data["error_message"]
    assert ["body", field] in [d["loc"][:2] for d in data[wire.ERROR_DETAIL]]
    assert sim.stats()["submissions_accepted"] == 0


def test_missing_field_and_non_json_are_422(served) -> None:
    """A missing required field is named in `detail`; a body that is not JSON is a 422 too."""
    _, client = served()
    missing = client.post(SUBMIT, json={"image_urls": ["https://x.invalid/a.png"]}).json()
    assert {"loc": ["body", "prompt"], "msg": "field required", "type": "missing"} in \
        missing[wire.ERROR_DETAIL]
    garbage = client.post(SUBMIT, content=b"{not json", headers={"content-type": "text/plain"})
    assert garbage.status_code == 422 and garbage.json()[wire.ERROR_DETAIL][0]["loc"] == ["body"]


def test_result_word_and_output_key_variants(served) -> None:
    """result_success_word=completed and output_key=videos give `completed` and a URL list."""
    sim, client = served(result_success_word="completed", output_key="videos")
    done = wait_result(client, submit(client))
    assert done["status"] == wire.COMPLETED
    urls = done[wire.OUTPUT][wire.OUTPUT_VIDEOS]
    assert isinstance(urls, list) and urls[0].startswith(sim.base_url + "/files/")


@pytest.mark.parametrize("word", [wire.COMPLETED, wire.FAILED])
def test_failed_generation_status_word_variant(word: str, served) -> None:
    """A failed run says `completed` (default) or `failed` on /status and `failed`+error on
    /result."""
    sim, client = served(fail_rate=1.0, status_on_failure=word)
    rid = submit(client)
    done = wait_result(client, rid)
    assert done["status"] == wire.FAILED and isinstance(done[wire.ERROR], str)
    assert wire.OUTPUT not in done
    assert status(client, rid)["status"] == word
    assert sim.stats()["requests_by_state"][wire.FAILED] == 1


def test_refused_data_uris_name_the_field(served) -> None:
    """With data URIs refused, a data: image answers 400 naming image_urls[0]; URLs still pass."""
    _, client = served(accept_data_uris=False)
    answer = client.post(SUBMIT, json={**body(), "image_urls": ["data:image/png;base64,AAAA"]})
    assert answer.status_code == 400
    assert "image_urls[0]" in answer.json()["error_message"]
    assert answer.json()[wire.ERROR_DETAIL][0]["loc"] == ["body", "image_urls", 0]
    submit(client)


def test_error_code_quirk_sends_errors_as_http_200(served) -> None:
    """With the quirk on, error answers are HTTP 200 whose body still has a non-null error_code."""
    sim, client = served(error_code_quirk=True)
    answer = client.get(wire.STATUS_PATH.format(request_id="nope"))
    assert answer.status_code == 200
    assert answer.json()[wire.ERROR_CODE] == wire.ERROR_CODE_NOT_FOUND
    assert client.post(SUBMIT, json=body()).json().get(wire.ERROR_CODE) is None
    assert sim.stats()["faults"]["error_code_quirk"] == 1


def test_duplicate_submissions_are_counted(served) -> None:
    """Resubmitting an accepted, not failed body counts as a duplicate; others do not."""
    sim, client = served()
    for _ in range(3):
        client.post(SUBMIT, json=body("same"))
    client.post(SUBMIT, json=body("different"))
    stats = httpx.get(sim.base_url + "/__sim__/stats").json()  # no auth needed
    assert stats["submissions_accepted"] == 4 and stats["duplicate_submissions"] == 2
    assert stats["calls"]["submit"] == 4


def test_reset_forgets_requests_and_counters(served) -> None:
    """POST /__sim__/reset empties the queue and zeroes the counters."""
    sim, client = served()
    rid = submit(client)
    assert httpx.post(sim.base_url + "/__sim__/reset").status_code == 200
    assert sim.stats()["submissions_accepted"] == 0
    assert client.get(wire.STATUS_PATH.format(request_id=rid)).status_code == 404


def test_stop_releases_port_and_threads() -> None:
    """Stop joins every thread and frees the port (start time: bench/sim.py --startup)."""
    before = set(threading.enumerate())
    sim = Simulator(SimConfig(**FAST)).start()
    port = sim.port
    rid = httpx.post(sim.base_url + SUBMIT, json=body(), headers=AUTH).json()[wire.REQUEST_ID]
    assert rid
    sim.stop()
    assert set(threading.enumerate()) <= before
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# -- the wallet -------------------------------------------------------------------------------

def test_the_wallet_is_billed_and_refuses_submits_once_spent(served) -> None:
    """GET /prod/v2/balance says the balance; each succeeded clip lowers it by what /result
    bills; a submit it cannot pay is refused with insufficient balance (400002), counted."""
    sim, client = served(balance=0.6)
    assert client.get(wire.BALANCE_PATH).json() == {wire.BALANCE_USD: 0.6,
                                                    wire.BALANCE_CURRENCY: "USD"}
    assert client.get(wire.BALANCE_PATH, headers={"Authorization": ""}).status_code == 401
    billed = 0.0
    for _ in range(2):
        result = wait_result(client, submit(client), params=wire.INCLUDE_COST_PARAM)
        billed += result[wire.COST]
    assert billed == pytest.approx(0.5)
    assert client.get(wire.BALANCE_PATH).json()[wire.BALANCE_USD] == pytest.approx(0.1)
    refused = client.post(SUBMIT, json=body(prompt="one too many"))
    assert refused.status_code == wire.NO_BALANCE_STATUS
    assert refused.json()[wire.ERROR_CODE] == wire.ERROR_CODE_NO_BALANCE
    stats = sim.stats()
    assert stats["submissions_accepted"] == 2 and stats["submissions_refused_balance"] == 1
    assert stats["balance_usd"] == pytest.approx(0.1) and stats["calls"]["balance"] == 3
    sim.reset()  # a reset forgets the bills: the wallet is full again
    assert client.get(wire.BALANCE_PATH).json()[wire.BALANCE_USD] == 0.6


def test_without_a_balance_the_wallet_is_unlimited(served) -> None:
    from pipeline.sim.routes import UNLIMITED_USD

    sim, client = served()
    assert client.get(wire.BALANCE_PATH).json()[wire.BALANCE_USD] == UNLIMITED_USD
    submit(client)
    assert sim.stats()["balance_usd"] is None


def test_a_negative_balance_is_refused() -> None:
    with pytest.raises(ValueError, match="balance"):
        SimConfig(balance=-1)
