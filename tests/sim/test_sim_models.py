"""The simulator as a catalog of models: every `validations` rule and the prompt limit refused
server-side, the paginated catalog with per-model prices, image models' PNG outputs, and the
/status words the client tolerates (`succeeded`, `canceled`, `error`)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import httpx
import pytest
from imagefiles import data_uri, image_bytes
from simcalls import wait_result
from testmodels import DREAMINA, FIXTURES, IMAGE, VIDEO

from pipeline import wire
from pipeline.client import RunComfyClient

SUBMIT = wire.SUBMIT_PATH.format(model_id=DREAMINA)
FAST = dict(gen_time=(0.1, 0.1), fetch_timeout=0.0, models_dirs=(str(FIXTURES),))
MIB = 1024 * 1024


@pytest.fixture
def served(sim_client):
    return functools.partial(sim_client, **FAST)


def png_uri(width: int, height: int, pad_to: int | None = None) -> str:
    import base64

    raw = image_bytes(width, height, "PNG", pad_to=pad_to)
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def dreamina(image: str, prompt: str | None = None) -> dict[str, Any]:
    return {"prompt": prompt or f"boats {uuid.uuid4()}", "image_urls": [image]}


# Each validations rule of the bundled Dreamina schema, just past its bound and just inside it
# (plus the cases the issue names: 200x150 and 1200x320).
RULES = [
    ("file_size_mb<", (640, 480, int(4.8 * MIB)), (640, 480, int(4.6 * MIB)),
     "File size must be less than 4.7 MB."),
    ("width_pixels<=", (4097, 1400, None), (4096, 1400, None),
     "Maximum resolution is 4096×4096."),
    ("height_pixels<=", (1400, 4097, None), (1400, 4096, None),
     "Maximum resolution is 4096×4096."),
    ("shortest_side_pixels>=", (319, 400, None), (320, 400, None),
     "The shortest side must be at least 320 px."),
    ("width/height<=", (961, 320, None), (960, 320, None),
     "The long-to-short side ratio must be within 3:1."),
    ("width/height>", (320, 970, None), (320, 969, None),
     "The long-to-short side ratio must be greater than 0.33."),
]


@pytest.mark.parametrize("rule,wrong,right,message", RULES, ids=[r[0] for r in RULES])
def test_each_dreamina_validation_is_refused_on_its_wrong_side(rule, wrong, right, message,
                                                               served) -> None:
    """A body whose image breaks one `validations` rule answers 422 naming image_urls[0] and
    the rule's own error text; the same rule just inside its bound is accepted."""
    sim, client = served()
    answer = client.post(SUBMIT, json=dreamina(png_uri(*wrong)))
    assert answer.status_code == 422, answer.text
    data = answer.json()
    assert data[wire.ERROR_CODE] == wire.ERROR_CODE_VALIDATION
    [detail] = data[wire.ERROR_DETAIL]
    assert detail["loc"] == ["body", "image_urls", 0] and message in detail["msg"]
    assert message in data["error_message"]
    assert client.post(SUBMIT, json=dreamina(png_uri(*right))).status_code == 200
    assert sim.stats()["submissions_accepted"] == 1


@pytest.mark.parametrize("size", [(200, 150), (1200, 320)])
def test_images_the_issue_names_are_refused(size: tuple[int, int], served) -> None:
    """A 200x150 image (too small) and a 1200x320 one (too wide) are refused server-side."""
    _, client = served()
    assert client.post(SUBMIT, json=dreamina(png_uri(*size))).status_code == 422


def test_the_prompt_limit_is_refused_server_side(served) -> None:
    """The schema says "less than 800 characters": 800 and 801 are refused, 799 accepted."""
    _, client = served()
    image = data_uri(640, 480)
    for n, status in ((799, 200), (800, 422), (801, 422)):
        answer = client.post(SUBMIT, json=dreamina(image, "x" * (n - 1) + str(n % 10)))
        assert answer.status_code == status, (n, answer.text)
        if status == 422:
            assert answer.json()[wire.ERROR_DETAIL][0]["loc"] == ["body", "prompt"]


def test_a_float_input_and_a_test_model_are_checked_by_their_own_schema(served) -> None:
    """The video test model takes `image_url` (one string) and a "float" cfg_scale: a number
    passes, a string is refused; Dreamina's `image_urls` is not one of its inputs."""
    _, client = served()
    submit = wire.SUBMIT_PATH.format(model_id=VIDEO)
    good = {"prompt": "boats", "image_url": data_uri(640, 480), "duration": 10,
            "cfg_scale": 0.7}
    assert client.post(submit, json=good).status_code == 200
    answer = client.post(submit, json={**good, "cfg_scale": "0.7"})
    assert answer.status_code == 422 and answer.json()[wire.ERROR_DETAIL][0]["loc"] == [
        "body", "cfg_scale"]
    small = client.post(submit, json={**good, "image_url": data_uri(320, 240)})
    assert small.status_code == 422
    assert "at least 300 px" in small.json()["error_message"]


def test_catalog_lists_every_model_a_page_at_a_time_with_its_price(served) -> None:
    """GET /v1/models pages through the bundled and the served models (schemas only with
    include_schema=true); each entry states its own price (its price.json, else the
    simulator's default); a bad limit is a 400."""
    _, client = served(price_usd=0.05)
    first = client.get(wire.MODELS_PATH, params={"limit": 2, "include_schema": "true"}).json()
    rest = client.get(wire.MODELS_PATH, params={"limit": 2, "offset": 2}).json()
    assert first[wire.CATALOG_TOTAL] == rest[wire.CATALOG_TOTAL] == 3
    entries = first[wire.CATALOG_MODELS] + rest[wire.CATALOG_MODELS]
    by_id = {e[wire.MODEL_ID]: e for e in entries}
    assert sorted(by_id) == sorted([DREAMINA, VIDEO, IMAGE])
    assert all(wire.INPUT_SCHEMA in e for e in first[wire.CATALOG_MODELS])
    assert all(wire.INPUT_SCHEMA not in e for e in rest[wire.CATALOG_MODELS])
    prices = {k: (e[wire.PRICE_USD], e[wire.PRICE_UNIT], e["kind"]) for k, e in by_id.items()}
    assert prices == {DREAMINA: (0.05, "second", "video"), VIDEO: (0.08, "second", "video"),
                      IMAGE: (0.02, "output", "image")}
    one = client.get(wire.MODEL_PATH.format(model_id=IMAGE)).json()
    assert "images" in one[wire.OUTPUT_SCHEMA]["output"]["properties"]
    assert client.get(wire.MODELS_PATH, params={"limit": 101}).status_code == 400


def test_an_image_model_makes_pngs_under_its_output_key(served) -> None:
    """An image model's result names `num_images` PNGs under `images` (its output schema's
    key), served without auth as real PNGs of the asked aspect ratio, and costs its price."""
    sim, client = served()
    answer = client.post(wire.SUBMIT_PATH.format(model_id=IMAGE),
                         json={"prompt": "a lighthouse", "num_images": 3, "aspect_ratio": "9:16"})
    assert answer.status_code == 200, answer.text
    done = wait_result(client, answer.json()[wire.REQUEST_ID], wire.INCLUDE_COST_PARAM)
    urls = done[wire.OUTPUT][wire.OUTPUT_IMAGES]
    assert len(urls) == 3 and len(set(urls)) == 3 and done[wire.COST] == 0.02
    import io

    from PIL import Image

    for url in urls:
        got = httpx.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(got.content)) as im:
            assert im.format == "PNG" and im.size[1] > im.size[0]
    assert httpx.get(urls[0].replace(".png", "_7.png")).status_code == 404
    assert httpx.get(urls[0].replace(".png", ".mp4")).status_code == 404


def test_status_can_say_every_word_the_client_tolerates(served) -> None:
    """With `succeeded`, `error` and `canceled` as its /status words, the simulator says them,
    and the client reads them as completed, failed and cancelled."""
    sim, client = served(status_success_word="succeeded", cancelled_word="canceled",
                         capacity=1, gen_time=(0.5, 0.5))
    ok = client.post(SUBMIT, json=dreamina(data_uri(640, 480))).json()[wire.REQUEST_ID]
    queued = client.post(SUBMIT, json=dreamina(data_uri(640, 480))).json()[wire.REQUEST_ID]
    assert client.post(wire.CANCEL_PATH.format(request_id=queued)).json()[wire.OUTCOME] == \
        wire.OUTCOME_CANCELLED
    wait_result(client, ok)
    words = {rid: client.get(wire.STATUS_PATH.format(request_id=rid)).json()["status"]
             for rid in (ok, queued)}
    assert words == {ok: "succeeded", queued: "canceled"}
    assert client.get(wire.RESULT_PATH.format(request_id=queued)).json()["status"] == "canceled"

    failing, fclient = served(status_on_failure="error", fail_rate=1.0)
    bad = fclient.post(SUBMIT, json=dreamina(data_uri(640, 480))).json()[wire.REQUEST_ID]
    wait_result(fclient, bad)
    assert fclient.get(wire.STATUS_PATH.format(request_id=bad)).json()["status"] == "error"

    async def read() -> list:
        out = []
        for base, rid in ((sim.base_url, ok), (sim.base_url, queued), (failing.base_url, bad)):
            async with RunComfyClient(base, "test-token-1234") as api:
                status, result = await api.status(rid), await api.result(rid)
                out.append((status.status, status.finished, result.status))
        return out
    assert asyncio.run(read()) == [("completed", True, "succeeded"),
                                   ("cancelled", True, "cancelled"),
                                   ("failed", True, "failed")]
