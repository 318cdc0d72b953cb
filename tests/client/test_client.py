"""Unit tests of pipeline.client against scripted answers (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from PIL import Image

from pipeline import wire
from pipeline.client import (
    NOT_ACCEPTED,
    OUTCOME_UNKNOWN,
    SUBMIT_TABLE,
    RunComfyClient,
    find_video_url,
    inline_local_images,
    parse_error_body,
    retry_after_seconds,
    to_data_uri,
)
from pipeline.errors import (
    ApiError,
    AuthError,
    ClientError,
    DownloadError,
    InputFileError,
    LocalImageError,
    MissingToken,
    NotFound,
    RateLimited,
    SubmitError,
    TransportError,
)

TOKEN = "tok-SECRET-7f3a9c"
API = "https://api.test"
CDN = "https://cdn.test"
MODEL = "bytedance/dreamina-3-0/image-to-video"
RID = "5b0c7f2e-1d3a-4c55-9a7e-0f6b2d8c9e11"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 8
STATUS = f"{API}/v1/requests/{RID}/status"
RESULT = f"{API}/v1/requests/{RID}/result"
CANCEL = f"{API}/v1/requests/{RID}/cancel"
SUBMIT = f"{API}/v1/models/{MODEL}"


# Backoff waits are zero in these tests (stamina's testing mode), attempts capped at 6.
pytestmark = pytest.mark.fast_retries(attempts=6)


Answer = Any  # httpx.Response | exception class | callable(request) -> httpx.Response


class Server:
    """Scripted answers by (method, URL without query); the last answer of a route repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, url: str, *answers: Answer) -> Server:
        self.routes[(method, url)] = list(answers)
        return self

    def count(self, method: str, url: str) -> int:
        return sum(1 for r in self.requests
                   if r.method == method and str(r.url.copy_with(query=None)) == url)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, str(request.url.copy_with(query=None)))
        answers = self.routes.get(key)
        if not answers:
            return httpx.Response(404, json={"error_code": 404001, "error_message": "no route"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("simulated failure", request=request)
        if callable(answer):
            return answer(request)
        return answer


def js(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def make(server: Server, **kw: Any) -> RunComfyClient:
    return RunComfyClient(API, TOKEN, transport=httpx.MockTransport(server), **kw)


def go(server: Server, op: str, *args: Any, client_kw: dict | None = None, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with make(server, **(client_kw or {})) as client:
            return await getattr(client, op)(*args, **kwargs)
    return asyncio.run(main())


def assert_no_token(exc: BaseException) -> None:
    seen = exc
    while seen is not None:
        assert TOKEN not in str(seen) and TOKEN not in repr(seen), repr(seen)
        for value in vars(seen).values() if hasattr(seen, "__dict__") else ():
            assert TOKEN not in str(value)
        seen = seen.__cause__ or seen.__context__


def go_err(exc_type: type[BaseException], server: Server, op: str, *args: Any, **kw: Any) -> Any:
    with pytest.raises(exc_type) as info:
        go(server, op, *args, **kw)
    assert_no_token(info.value)
    return info.value


# -- status ---------------------------------------------------------------------------------

@pytest.mark.parametrize("word,position,expected,finished", [
    ("in_queue", 3, "in_queue", False),
    ("in_progress", None, "in_progress", False),
    ("completed", None, "completed", True),
    ("succeeded", None, "completed", True),
    ("failed", None, "failed", True),
    ("error", None, "failed", True),
    ("cancelled", None, "cancelled", True),
    ("canceled", None, "cancelled", True),
    ("COMPLETED", None, "completed", True),
    ("warming_up", None, "warming_up", False),
    ("pending", None, "pending", False),
    ("processing", None, "processing", False),
])
def test_status_words(word: str, position: int | None, expected: str, finished: bool) -> None:
    """Every /status word maps to the normalised status, and only terminal words count as
    finished."""
    body = {"request_id": RID, "status": word}
    if position is not None:
        body["queue_position"] = position
    info = go(Server().on("GET", STATUS, js(200, body)), "status", RID)
    assert (info.status, info.queue_position, info.finished) == (expected, position, finished)


def test_status_sends_bearer_token() -> None:
    """API calls carry `Authorization: Bearer <token>`."""
    server = Server().on("GET", STATUS, js(200, {"status": "in_queue"}))
    go(server, "status", RID)
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_bad_request_id_is_refused_before_sending() -> None:
    """A request id that is not URL-safe is a programming error (ValueError), nothing is sent."""
    server = Server()
    with pytest.raises(ValueError):
        go(server, "status", "../../v1/models")
    assert server.requests == []


# -- result ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body,status,error", [
    ({"status": "succeeded", "output": {"video": f"{CDN}/a.mp4"}}, "succeeded", None),
    ({"status": "completed", "output": {"video": f"{CDN}/a.mp4"}}, "succeeded", None),
    ({"status": "failed", "error": "model refused the prompt"}, "failed",
     "model refused the prompt"),
    ({"status": "failed", "error": {"type": "ModelError", "message": "out of memory"}}, "failed",
     "ModelError: out of memory"),
    ({"status": "failed", "error": {"code": 7}}, "failed", '{"code":7}'),
    ({"status": "failed"}, "failed", "the API reported failure without a reason"),
    ({"status": "completed", "error": "nsfw filter"}, "failed", "nsfw filter"),
    ({"status": "cancelled"}, "cancelled", None),
    ({"status": "canceled"}, "cancelled", None),
    ({"status": "in_queue"}, "in_queue", None),
    ({"status": "in_progress"}, "in_progress", None),
])
def test_result_vocabulary(body: dict, status: str, error: str | None) -> None:
    """Every /result word (succeeded|completed, failed with string/object/no error, cancelled, live)
    is normalised."""
    info = go(Server().on("GET", RESULT, js(200, body)), "result", RID)
    assert (info.status, info.error) == (status, error)


def test_result_asks_for_cost_and_reads_it() -> None:
    """/result is asked with include_cost=true and the numeric cost is kept."""
    server = Server().on("GET", RESULT, js(200, {"status": "succeeded", "cost": 0.25,
                                                 "output": {"video": f"{CDN}/a.mp4"}}))
    info = go(server, "result", RID)
    assert server.requests[0].url.params["include_cost"] == "true"
    assert info.cost == 0.25 and info.video_url == f"{CDN}/a.mp4"


@pytest.mark.parametrize("word", ["pending", "waiting", "starting", "processing", "exploded"])
def test_result_words_not_known_are_not_finished(word: str) -> None:
    """The live words of RunComfy's newer code, and any unknown word, are passed through as a
    request not finished (the poller asks again: polling.timeout bounds it), never an error."""
    from pipeline.client import finished_result, known_live

    info = go(Server().on("GET", RESULT, js(200, {"status": word.upper()})), "result", RID)
    assert info.status == word and not finished_result(info.status) and info.error is None
    assert known_live(word) == (word != "exploded")


@pytest.mark.parametrize("output,expected", [
    ({"video": f"{CDN}/v.mp4", "videos": [f"{CDN}/w.mp4"]}, f"{CDN}/v.mp4"),
    ({"videos": [f"{CDN}/a.mp4", f"{CDN}/b.mp4"], "image": f"{CDN}/a.png"}, f"{CDN}/a.mp4"),
    ({"image": f"{CDN}/a.png", "clips": [{"url": f"{CDN}/c.mp4?sig=1"}]}, f"{CDN}/c.mp4?sig=1"),
    ({"image": f"{CDN}/a.png", "other": "not a url"}, f"{CDN}/a.png"),
    ({"video": "s3://bucket/x.mp4", "videos": []}, None),
    ({}, None),
    (None, None),
])
def test_output_url_order(output: Any, expected: str | None) -> None:
    """The video is output.video, else output.videos[0], else a video-like URL, else any http(s)
    URL."""
    assert find_video_url(output) == expected


# -- error bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("body,expected", [
    ({"error_code": 400001, "error_message": "bad model"}, (400001, "bad model")),
    ({"error_code": 400001, "message": "m"}, (400001, "m")),
    ({"error_code": 1, "error": "e"}, (1, "e")),
    ({"error_code": 1, "detail": "d"}, (1, "d")),
    ({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]},
     (None, "body.prompt: field required")),
    ({"code": 400004, "error": "UserAccountError"}, (400004, "UserAccountError")),
    ({"error_message": "", "message": "second"}, (None, "second")),
    ("not a dict", None),
])
def test_error_body_parsing(body: Any, expected: Any) -> None:
    """error_code plus the first of error_message|message|error|detail is read from an error
    body."""
    assert parse_error_body(body) == expected


def test_ok_body_without_error_code_is_not_an_error() -> None:
    """A 2xx body is an error only when it has a non-null error_code."""
    assert parse_error_body({"status": "in_queue", "error_code": None}, ok_status=True) is None
    assert parse_error_body({"error_code": 500001, "error_message": "x"},
                            ok_status=True) == (500001, "x")


def test_200_with_error_code_raises() -> None:
    """HTTP 200 carrying error_code 400001 is an ApiError (not a status), and is not retried."""
    server = Server().on("GET", STATUS, js(200, {"error_code": 400001, "error_message": "bad id"}))
    err = go_err(ApiError, server, "status", RID)
    assert (err.status_code, err.error_code, err.message) == (200, 400001, "bad id")
    assert server.count("GET", STATUS) == 1


def test_200_with_server_error_code_is_retried() -> None:
    """HTTP 200 carrying a 5xxxxx error_code is transient like a 500."""
    server = Server().on("GET", STATUS, js(200, {"error_code": 500001, "error_message": "oops"}),
                         js(200, {"status": "in_progress"}))
    assert go(server, "status", RID).status == "in_progress"


def test_error_body_message_names_the_field() -> None:
    """A 422 error body with a detail list is reported with the failing field."""
    body = {"error_code": 422001, "error_message": "Validation Error",
            "detail": [{"loc": ["body", "image_urls"], "msg": "field required"}]}
    err = go_err(ApiError, Server().on("GET", RESULT, js(422, body)), "result", RID)
    assert "body.image_urls: field required" in str(err) and err.status_code == 422


def test_non_json_error_body_keeps_a_snippet() -> None:
    """An HTML error page from a gateway is summarised in the message."""
    server = Server().on("GET", STATUS, httpx.Response(418, text="<h1>teapot</h1>"))
    err = go_err(ApiError, server, "status", RID)
    assert "teapot" in err.message


# -- retries --------------------------------------------------------------------------------

@pytest.mark.parametrize("first", [
    js(500, {"error_code": 500001, "error_message": "boom"}),
    js(502, {}), js(503, {}), js(504, {}),
    js(429, {"error_message": "slow down"}, **{"Retry-After": "1"}),
    js(408, {}),
    httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ReadError,
    httpx.RemoteProtocolError, httpx.WriteError, httpx.PoolTimeout,
])
def test_gets_retry_transient_failures(first: Answer) -> None:
    """GET /status is retried on 5xx, 429, 408 and connection errors, and then succeeds."""
    server = Server().on("GET", STATUS, first, first, js(200, {"status": "in_progress"}))
    async def main() -> tuple[str, RunComfyClient]:
        async with make(server) as client:
            return (await client.status(RID)).status, client
    status, client = asyncio.run(main())
    assert status == "in_progress" and server.count("GET", STATUS) == 3
    assert client.calls["status"] == 3 and client.calls["status_retries"] == 2


def test_cancel_is_retried() -> None:
    """POST /cancel is idempotent, so it is retried like a GET."""
    server = Server().on("POST", CANCEL, js(502, {}),
                         js(202, {"request_id": RID, "status": "cancelled",
                                  "outcome": "cancelled"}))
    assert go(server, "cancel", RID).cancelled
    assert server.count("POST", CANCEL) == 2


@pytest.mark.parametrize("answer,exc_type,status", [
    (js(400, {"error_code": 400001, "error_message": "bad"}), ApiError, 400),
    (js(404, {"error_code": 404001, "error_message": "unknown"}), NotFound, 404),
    (js(422, {"error_message": "invalid"}), ApiError, 422),
    (js(409, {}), ApiError, 409),
])
def test_permanent_4xx_not_retried(answer: httpx.Response, exc_type: type, status: int) -> None:
    """Other 4xx answers are permanent: one call, a typed error."""
    server = Server().on("GET", RESULT, answer)
    err = go_err(exc_type, server, "result", RID)
    assert server.count("GET", RESULT) == 1 and err.status_code == status


def test_retries_run_out_on_5xx() -> None:
    """After retry_attempts 503s the last one surfaces as ApiError(503)."""
    server = Server().on("GET", STATUS, js(503, {"error_message": "busy"}))
    err = go_err(ApiError, server, "status", RID, client_kw={"retry_attempts": 3})
    assert err.status_code == 503 and server.count("GET", STATUS) == 3


def test_retries_run_out_on_429() -> None:
    """Persistent 429 ends as RateLimited carrying the server's Retry-After."""
    server = Server().on("GET", STATUS, js(429, {}, **{"Retry-After": "2"}))
    err = go_err(RateLimited, server, "status", RID, client_kw={"retry_attempts": 2})
    assert err.retry_after == 2.0 and server.count("GET", STATUS) == 2


def test_retries_run_out_on_connection_errors() -> None:
    """Persistent connection failures end as TransportError raised from the httpx error."""
    server = Server().on("GET", STATUS, httpx.ConnectError)
    err = go_err(TransportError, server, "status", RID, client_kw={"retry_attempts": 4})
    assert isinstance(err.__cause__, httpx.ConnectError) and server.count("GET", STATUS) == 4


def test_retry_after_longer_than_budget_gives_up_at_once() -> None:
    """A Retry-After beyond the whole retry budget is not slept on: RateLimited at once."""
    server = Server().on("GET", STATUS, js(429, {}, **{"Retry-After": "3600"}))
    err = go_err(RateLimited, server, "status", RID, client_kw={"retry_timeout": 60})
    assert err.retry_after == 3600 and server.count("GET", STATUS) == 1


def test_retry_after_is_honoured_in_real_time() -> None:
    """With real waits, a 429 with Retry-After: 1 delays the next attempt by about a second."""
    server = Server().on("GET", STATUS, js(429, {}, **{"Retry-After": "1"}),
                         js(200, {"status": "in_queue"}))
    with stamina.set_testing(False):
        start = time.monotonic()
        go(server, "status", RID, client_kw={"retry_wait_initial": 0.0, "retry_wait_max": 0.0})
        elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 3


def test_backoff_without_hint_is_short_full_jitter() -> None:
    """Without Retry-After the wait is full jitter below wait_initial * 2**n (here tiny)."""
    server = Server().on("GET", STATUS, js(500, {}), js(500, {}), js(200, {"status": "in_queue"}))
    with stamina.set_testing(False):
        start = time.monotonic()
        go(server, "status", RID, client_kw={"retry_wait_initial": 0.01, "retry_wait_max": 0.05})
        assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("value,expected", [
    ("5", 5.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), (None, None),
    ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
])
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    """Retry-After is read as delta-seconds or as an HTTP date (relative to now), never negative."""
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(value, now=now) == expected


# -- auth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    js(401, {"error_code": 400004, "error_message": "UserAccountError"}),
    js(403, {"error_message": "forbidden"}),
    js(400, {"error_code": 400004, "error_message": "UserAccountError: invalid token"}),
    js(400, {"code": 400004, "error": "UserAccountError"}),
    js(200, {"error_code": 400004, "error_message": "UserAccountError"}),
])
@pytest.mark.parametrize("op,method,url", [("status", "GET", STATUS), ("result", "GET", RESULT),
                                           ("cancel", "POST", CANCEL)])
def test_auth_failures(answer: httpx.Response, op: str, method: str, url: str) -> None:
    """401, 403, 400+400004 (and 200+400004) raise AuthError after one call, with an offline
    hint."""
    server = Server().on(method, url, answer)
    err = go_err(AuthError, server, op, RID)
    assert server.count(method, url) == 1
    assert any("--backend sim" in line for line in err.lines())


def test_auth_failure_on_submit_is_not_accepted() -> None:
    """A refused token on submit is SubmitError(NOT_ACCEPTED) wrapping the AuthError."""
    server = Server().on("POST", SUBMIT,
                         js(401, {"error_code": 400004, "error_message": "bad token"}))
    err = go_err(SubmitError, server, "submit", MODEL,
                 {"prompt": "x", "image_urls": [f"{CDN}/a.png"]})
    assert err.kind == NOT_ACCEPTED and isinstance(err.error, AuthError) and err.status_code == 401


def test_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token in the environment is MissingToken, whose message says how to run offline."""
    for name in wire.TOKEN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingToken) as info:
        RunComfyClient.from_env()
    assert "--backend sim" in str(info.value) and "RUNCOMFY_API_TOKEN" in str(info.value)
    with pytest.raises(MissingToken):
        RunComfyClient(API, "  ")


@pytest.mark.parametrize("var", wire.TOKEN_ENV_VARS)
def test_from_env(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    """from_env reads either token variable and RUNCOMFY_BASE_URL, defaulting to the real API."""
    for name in wire.TOKEN_ENV_VARS + (wire.BASE_URL_ENV_VAR,):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, TOKEN)
    assert RunComfyClient.from_env().base_url == wire.DEFAULT_BASE_URL
    monkeypatch.setenv(wire.BASE_URL_ENV_VAR, "http://127.0.0.1:9/")
    client = RunComfyClient.from_env()
    assert client.base_url == "http://127.0.0.1:9" and TOKEN not in repr(client)
    assert RunComfyClient.from_env(base_url=API).base_url == API


def test_token_not_in_logs(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """No log line (ours, httpx's, stamina's retry messages) carries the token, even at DEBUG."""
    caplog.set_level("DEBUG")
    server = Server().on("GET", STATUS, js(503, {}), httpx.ConnectError,
                         js(200, {"status": "in_queue"}))
    server.on("POST", SUBMIT, js(401, {"error_message": "bad"}))
    server.on("GET", f"{CDN}/o.mp4", js(500, {}), media())
    go(server, "status", RID)
    go_err(SubmitError, server, "submit", MODEL, {"prompt": "p"})
    go(server, "download", f"{CDN}/o.mp4", tmp_path / "o.mp4")
    assert caplog.records and TOKEN not in caplog.text


def test_token_is_scrubbed_from_echoed_messages() -> None:
    """Even a server that echoes the token in an error message does not put it in our errors."""
    server = Server().on("GET", STATUS, js(400, {"error_message": f"bad token {TOKEN}"}))
    err = go_err(ApiError, server, "status", RID)
    assert "***" in err.message


# -- submit ---------------------------------------------------------------------------------

SUBMIT_CASES: list[tuple[str, Answer, str]] = [
    ("connect error", httpx.ConnectError, NOT_ACCEPTED),
    ("connect timeout", httpx.ConnectTimeout, NOT_ACCEPTED),
    ("pool timeout", httpx.PoolTimeout, NOT_ACCEPTED),
    ("unsupported protocol", httpx.UnsupportedProtocol, NOT_ACCEPTED),
    ("local protocol error", httpx.LocalProtocolError, NOT_ACCEPTED),
    ("write error", httpx.WriteError, OUTCOME_UNKNOWN),
    ("write timeout", httpx.WriteTimeout, OUTCOME_UNKNOWN),
    ("read error", httpx.ReadError, OUTCOME_UNKNOWN),
    ("read timeout", httpx.ReadTimeout, OUTCOME_UNKNOWN),
    ("remote protocol error", httpx.RemoteProtocolError, OUTCOME_UNKNOWN),
    ("400 bad model", js(400, {"error_code": 400001, "error_message": "bad model"}), NOT_ACCEPTED),
    ("400 no balance", js(400, {"error_code": 400002, "error_message": "no money"}), NOT_ACCEPTED),
    ("401", js(401, {}), NOT_ACCEPTED),
    ("403", js(403, {}), NOT_ACCEPTED),
    ("404", js(404, {}), NOT_ACCEPTED),
    ("408", js(408, {}), NOT_ACCEPTED),
    ("422", js(422, {"detail": [{"loc": ["body", "prompt"], "msg": "required"}]}), NOT_ACCEPTED),
    ("429", js(429, {}, **{"Retry-After": "7"}), NOT_ACCEPTED),
    ("500", js(500, {}), OUTCOME_UNKNOWN),
    ("501", js(501, {}), OUTCOME_UNKNOWN),
    ("502", httpx.Response(502, text="bad gateway"), OUTCOME_UNKNOWN),
    ("503", js(503, {}), OUTCOME_UNKNOWN),
    ("504", js(504, {}), OUTCOME_UNKNOWN),
    ("303", httpx.Response(303, headers={"Location": "/elsewhere"}), OUTCOME_UNKNOWN),
    ("200 not json", httpx.Response(200, text="<html>ok</html>"), OUTCOME_UNKNOWN),
    ("200 without request_id", js(200, {"status": "in_queue"}), OUTCOME_UNKNOWN),
    ("200 bad request_id", js(200, {"request_id": "../x"}), OUTCOME_UNKNOWN),
    ("200 error_code 400002", js(200, {"error_code": 400002, "error_message": "x"}), NOT_ACCEPTED),
    ("200 error_code 500001", js(200, {"error_code": 500001, "error_message": "x"}),
     OUTCOME_UNKNOWN),
]


@pytest.mark.parametrize("name,answer,kind", SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES])
def test_submit_classification(name: str, answer: Answer, kind: str) -> None:
    """Each submit failure is classified as in SUBMIT_TABLE, and the POST is sent exactly once."""
    server = Server().on("POST", SUBMIT, answer)
    err = go_err(SubmitError, server, "submit", MODEL,
                 {"prompt": "p", "image_urls": [f"{CDN}/a.png"]})
    assert err.kind == kind, name
    assert server.count("POST", SUBMIT) == 1
    if isinstance(answer, httpx.Response):
        assert err.status_code == answer.status_code
    if name == "429":
        assert err.retry_after == 7.0
    permanent = name.startswith(("400", "401", "403", "404", "422", "200 error_code 4"))
    assert err.permanent == permanent  # a 4xx refusal (also as 200+4xxxxx), but not 408/429


def test_submit_table_covers_both_kinds() -> None:
    """The published table names every classification and no other."""
    assert {row[1] for row in SUBMIT_TABLE} == {NOT_ACCEPTED, OUTCOME_UNKNOWN}


def test_submit_success() -> None:
    """A good submit returns the Submission and posts the flat body as JSON with the token."""
    answer = {"request_id": RID, "status_url": STATUS, "result_url": RESULT, "cancel_url": CANCEL}
    server = Server().on("POST", SUBMIT, js(200, answer))
    body = {"prompt": "p", "image_urls": [f"{CDN}/a.png"]}
    sub = go(server, "submit", MODEL, body)
    assert (sub.request_id, sub.status_url, sub.result_url, sub.cancel_url) == \
        (RID, STATUS, RESULT, CANCEL)
    assert json.loads(server.requests[0].content) == body
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


# -- data URIs ------------------------------------------------------------------------------

def image_file(path: Path, fmt: str) -> Path:
    Image.new("RGB", (8, 6), (200, 30, 30)).save(path, format=fmt)
    return path


@pytest.mark.parametrize("fmt,name,media", [("JPEG", "a.jpg", "image/jpeg"),
                                            ("PNG", "a.png", "image/png"),
                                            ("PNG", "looks-like.jpg", "image/png")])
def test_to_data_uri_sniffs_content(tmp_path: Path, fmt: str, name: str, media: str) -> None:
    """A local JPEG/PNG becomes a base64 data URI typed by its bytes, not its name."""
    path = image_file(tmp_path / name, fmt)
    uri = to_data_uri(path)
    prefix = f"data:{media};base64,"
    assert uri.startswith(prefix) and base64.b64decode(uri[len(prefix):]) == path.read_bytes()


@pytest.mark.parametrize("content,needle", [(b"GIF89a....", "not a JPEG or PNG"),
                                            (None, "cannot read")])
def test_to_data_uri_refuses(tmp_path: Path, content: bytes | None, needle: str) -> None:
    """A file that is not JPEG/PNG, or does not exist, is an InputFileError naming the file."""
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=needle):
        to_data_uri(path)


def test_inline_local_images(tmp_path: Path) -> None:
    """Relative paths under base_dir are inlined; URLs, data URIs and other fields pass
    unchanged."""
    image_file(tmp_path / "in.png", "PNG")
    body = {"image_urls": ["in.png", f"{CDN}/b.jpg", "data:image/png;base64,AAAA"],
            "prompt": "in.png", "image": "in.png"}
    out = inline_local_images(body, tmp_path, ["image_urls", "image"])
    assert out["image_urls"][0].startswith("data:image/png;base64,")
    assert out["image_urls"][1:] == body["image_urls"][1:]
    assert out["image"].startswith("data:image/png") and out["prompt"] == "in.png"
    assert body["image_urls"][0] == "in.png"  # the input is not modified


def test_inline_refuses_other_schemes(tmp_path: Path) -> None:
    """A non-http URL scheme in an image field is refused, not read as a path."""
    with pytest.raises(InputFileError, match="scheme 'ftp'"):
        inline_local_images({"image_urls": ["ftp://x/y.png"]}, tmp_path, ["image_urls"])


def test_submit_sends_data_uri(tmp_path: Path) -> None:
    """submit() inlines a local image (schema's image fields) at send time."""
    image_file(tmp_path / "in.jpg", "JPEG")
    server = Server().on("POST", SUBMIT, js(200, {"request_id": RID}))
    go(server, "submit", MODEL, {"prompt": "p", "image_urls": ["in.jpg"]}, base_dir=tmp_path)
    sent = json.loads(server.requests[0].content)
    assert sent["image_urls"][0].startswith("data:image/jpeg;base64,")


def test_data_uris_off_refuses_local_files(tmp_path: Path) -> None:
    """With data_uris=False a local path is an error that says the API promises public HTTPS
    URLs."""
    image_file(tmp_path / "in.jpg", "JPEG")
    server = Server().on("POST", SUBMIT, js(200, {"request_id": RID}))
    with pytest.raises(LocalImageError, match="public HTTPS URLs"):
        go(server, "submit", MODEL, {"prompt": "p", "image_urls": ["in.jpg"]}, base_dir=tmp_path,
           client_kw={"data_uris": False})
    assert server.requests == []


# -- other operations -----------------------------------------------------------------------

@pytest.mark.parametrize("body,outcome,cancelled", [
    ({"request_id": RID, "status": "cancelled", "outcome": "cancelled"}, "cancelled", True),
    ({"request_id": RID, "status": "in_progress", "outcome": "not_cancellable"},
     "not_cancellable", False),
    ({"request_id": RID, "outcome": "cancellation_requested"}, "cancellation_requested", False),
    ({"request_id": RID}, "unknown", False),
])
def test_cancel_outcomes(body: dict, outcome: str, cancelled: bool) -> None:
    """Cancel answers (202) report their outcome; unknown outcomes are kept for the caller to
    check."""
    info = go(Server().on("POST", CANCEL, js(202, body)), "cancel", RID)
    assert (info.outcome, info.cancelled) == (outcome, cancelled)


@pytest.mark.parametrize("body,expected", [
    ({"base_price_usd": 0.05, "price_unit": "second", "pricing_note": "per output second"},
     (0.05, "second", "per output second")),
    ({"pricing": {"base_price_usd": "0.3", "price_unit": "output"}}, (0.3, "output", None)),
    ({"model_id": MODEL}, (None, None, None)),
])
def test_model_entry(body: dict, expected: tuple) -> None:
    """The catalog entry's price fields are read when present and None when absent."""
    entry = go(Server().on("GET", f"{API}/v1/models/{MODEL}", js(200, body)), "model_entry", MODEL)
    assert (entry.price_usd, entry.price_unit, entry.note) == expected


@pytest.mark.parametrize("bad", ["../x", "a/../b", "a//b", "a b", "/a", "a/", "a?b", ""])
def test_a_model_id_that_is_not_one_never_reaches_a_url(bad: str) -> None:
    """Submit and the catalog entry refuse an id that could leave the model's path (`..`,
    empty segments, characters outside [A-Za-z0-9_.-]) before any request is made."""
    server = Server()
    for op, args in (("model_entry", (bad,)), ("submit", (bad, {"prompt": "x"}))):
        with pytest.raises(ValueError, match="not a model id"):
            go(server, op, *args)
    assert server.requests == []
    assert go(Server().on("GET", f"{API}/v1/models/a.b/c_d-1", js(200, {})),
              "model_entry", "a.b/c_d-1").price_usd is None


def test_semaphore_bounds_calls_in_flight() -> None:
    """Hundreds of concurrent callers never put more than max_in_flight requests into httpx."""
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return js(200, {"status": "in_queue", "queue_position": 1})

    async def main() -> int:
        async with RunComfyClient(API, TOKEN, max_in_flight=4,
                                  transport=httpx.MockTransport(handler)) as client:
            await asyncio.gather(*(client.status(RID) for _ in range(200)))
            return client.calls["status"]

    assert asyncio.run(main()) == 200 and 1 < peak <= 4


# -- download -------------------------------------------------------------------------------

def media(content: bytes = MP4, ctype: str = "video/mp4", **headers: str) -> httpx.Response:
    return httpx.Response(200, content=content, headers={"Content-Type": ctype, **headers})


def truncated(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=MP4[:100],
                          headers={"Content-Type": "video/mp4", "Content-Length": str(len(MP4))})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_ok(tmp_path: Path) -> None:
    """A download lands under the final name with its size, SHA-256 and content type."""
    server = Server().on("GET", f"{CDN}/out.mp4", media())
    info = go(server, "download", f"{CDN}/out.mp4", tmp_path / "sub" / "v.mp4")
    assert info.path.read_bytes() == MP4 and info.size == len(MP4)
    assert info.sha256 == hashlib.sha256(MP4).hexdigest() and info.content_type == "video/mp4"
    assert leftovers(tmp_path / "sub") == ["v.mp4"]


@pytest.mark.parametrize("url", [f"{CDN}/out.mp4", f"{API}/outputs/out.mp4"])
def test_download_never_sends_token(tmp_path: Path, url: str) -> None:
    """The token goes to no download, not even one on the API's own host."""
    server = Server().on("GET", url, media())
    go(server, "download", url, tmp_path / "v.mp4")
    assert [r for r in server.requests if "authorization" in r.headers] == []


def test_download_truncated_leaves_nothing(tmp_path: Path) -> None:
    """A body shorter than its Content-Length is retried, then fails leaving no file and no temp
    file."""
    (tmp_path / "keep.txt").write_text("x")
    server = Server().on("GET", f"{CDN}/out.mp4", truncated)
    err = go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4",
                 client_kw={"retry_attempts": 3})
    assert "100 of" in str(err) and server.count("GET", f"{CDN}/out.mp4") == 3
    assert leftovers(tmp_path) == ["keep.txt"]


def test_download_failure_keeps_existing_file(tmp_path: Path) -> None:
    """A failed download never replaces what is already under the final name."""
    (tmp_path / "v.mp4").write_bytes(b"old")
    server = Server().on("GET", f"{CDN}/out.mp4", truncated)
    go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == b"old" and leftovers(tmp_path) == ["v.mp4"]


def test_download_retries_truncation_then_succeeds(tmp_path: Path) -> None:
    """A cut-short body followed by a whole one ends in a good file."""
    server = Server().on("GET", f"{CDN}/out.mp4", truncated, media())
    assert go(server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4").size == len(MP4)


@pytest.mark.parametrize("answers,calls,ok", [
    ([js(404, {}), js(404, {}), media()], 3, True),
    ([js(404, {})], 4, False),  # the first try and three more for a late output
    ([js(500, {}), js(429, {}), media()], 3, True),
    ([httpx.ConnectError, media()], 2, True),
    ([js(403, {})], 1, False),
])
def test_download_retry_policy(tmp_path: Path, answers: list, calls: int, ok: bool) -> None:
    """Downloads retry 5xx, 429, connection errors and a few 404s; other 4xx fail at once."""
    server = Server().on("GET", f"{CDN}/out.mp4", *answers)
    if ok:
        go(server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    else:
        go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    assert server.count("GET", f"{CDN}/out.mp4") == calls


def chunked_mp4(request: httpx.Request) -> httpx.Response:
    async def chunks():
        yield MP4[:80]
        yield MP4[80:200]
    return httpx.Response(200, content=chunks(), headers={"Content-Type": "video/mp4"})


@pytest.mark.parametrize("answer,needle", [
    (media(), "over the 100-byte limit"),
    (chunked_mp4, "more than the 100-byte limit"),
    (media(b"<html>oops</html>", "text/html"), "not a media file"),
    (media(b"just some bytes, no magic here", "application/octet-stream"),
     "not a known media type"),
    (media(MP4[:90], "image/png"), "content-type says image/png but the bytes are video/mp4"),
])
def test_download_checks(tmp_path: Path, answer: Answer, needle: str) -> None:
    """Size cap (declared or streamed), content type and magic bytes are checked; no file is
    left."""
    server = Server().on("GET", f"{CDN}/out.mp4", answer)
    err = go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4",
                 max_bytes=100)
    assert needle in str(err) and leftovers(tmp_path) == []
    assert server.count("GET", f"{CDN}/out.mp4") == 1  # permanent: not retried


def test_download_follows_http_redirect(tmp_path: Path) -> None:
    """A redirect to another http(s) URL is followed (without the token)."""
    server = Server().on("GET", f"{CDN}/out.mp4",
                         httpx.Response(302, headers={"Location": "/real.mp4"}))
    server.on("GET", f"{CDN}/real.mp4", media())
    info = go(server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    assert info.size == len(MP4) and info.url == f"{CDN}/out.mp4"


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://cdn.test/x.mp4"])
def test_download_refuses_redirect_to_other_scheme(tmp_path: Path, location: str) -> None:
    """A redirect to a non-http(s) scheme is refused, and not retried."""
    server = Server().on("GET", f"{CDN}/out.mp4",
                         httpx.Response(302, headers={"Location": location}))
    err = go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    assert "scheme" in str(err) and server.count("GET", f"{CDN}/out.mp4") == 1


def test_download_refuses_redirect_loops(tmp_path: Path) -> None:
    """More than a few redirect hops is an error."""
    server = Server().on("GET", f"{CDN}/out.mp4",
                         httpx.Response(302, headers={"Location": "/out.mp4"}))
    err = go_err(DownloadError, server, "download", f"{CDN}/out.mp4", tmp_path / "v.mp4")
    assert "redirects" in str(err)


def test_download_refuses_non_http_url(tmp_path: Path) -> None:
    """A non-http(s) output URL is refused before anything is sent."""
    server = Server()
    go_err(DownloadError, server, "download", "file:///etc/passwd", tmp_path / "v.mp4")
    assert server.requests == []


def test_download_error_hides_query_string(tmp_path: Path) -> None:
    """Pre-signed URL signatures do not appear in download error messages."""
    server = Server().on("GET", f"{CDN}/out.mp4", js(403, {}))
    err = go_err(DownloadError, server, "download", f"{CDN}/out.mp4?X-Signature=s3cr3t",
                 tmp_path / "v.mp4")
    assert "s3cr3t" not in str(err)


def test_client_repr_and_errors_hide_token() -> None:
    """The client's repr and every ClientError subclass message are free of the token."""
    client = RunComfyClient(API, TOKEN, transport=httpx.MockTransport(Server()))
    assert TOKEN not in repr(client) and TOKEN not in str(vars(client).get("base_url"))
    asyncio.run(client.aclose())
    assert issubclass(SubmitError, ClientError) and issubclass(NotFound, ApiError)


def test_local_image_errors_are_client_and_input_file_errors(tmp_path: Path) -> None:
    """A local image that cannot be sent is caught both as ClientError and as InputFileError."""
    with pytest.raises(ClientError) as info:
        to_data_uri(tmp_path / "missing.png")
    assert isinstance(info.value, InputFileError) and isinstance(info.value, LocalImageError)


def test_public_api() -> None:
    """pipeline.client exports exactly its __all__, including every name the execute stage
    imports."""
    import pipeline.client as mod
    needed = {"RunComfyClient", "Submission", "StatusInfo", "ResultInfo", "CancelInfo",
              "ModelEntry", "DownloadInfo", "NOT_ACCEPTED", "OUTCOME_UNKNOWN",
              "inline_local_images", "to_data_uri"}
    assert needed <= set(mod.__all__)
    assert all(hasattr(mod, name) for name in mod.__all__)
    public = {n for n in vars(mod) if not n.startswith("_")} - {"annotations"}
    assert public == set(mod.__all__)


@pytest.mark.parametrize("output,keys,inputs,expected", [
    # the output schema's keys, in its order: an image model's `images`, then anything else
    ({"images": ["https://s/a.png", "https://s/b.png"], "video": "https://s/v.mp4"},
     ("images", "image"), {}, ["https://s/a.png", "https://s/b.png"]),
    ({"video": "https://s/v.mp4", "videos": ["https://s/v.mp4", "https://s/w.mp4"]},
     ("video", "videos"), {}, ["https://s/v.mp4", "https://s/w.mp4"]),
    # no schema key: any URL that is not one of the request's own inputs (results echo them)
    ({"result": {"url": "https://s/out.mp4"}, "input_image": "https://in/boats.jpg"},
     ("video", "videos"), {"image_url": "https://in/boats.jpg"}, ["https://s/out.mp4"]),
    ({"echo": ["https://in/boats.jpg"]}, ("video",), {"image_urls": ["https://in/boats.jpg"]},
     []),
])
def test_outputs_are_picked_by_the_output_schema_and_never_echo_inputs(
        output: Any, keys: tuple, inputs: dict, expected: list) -> None:
    """What a model made is read under its output schema's keys, else as any URL of
    `output` that is not one of the request's input URLs."""
    from pipeline.client import pick_outputs

    assert pick_outputs(output, keys, inputs) == expected


def test_catalog_entries_and_pages_are_read_with_their_schemas() -> None:
    """A catalog entry gives its price, its input and output schemas (objects, or JSON text)
    and model id; a page gives its entries and the catalog's total."""
    from pipeline.client import parse_model_entry, parse_model_list

    entry = parse_model_entry({wire.MODEL_ID: "a/b", wire.PRICE_USD: "0.1",
                               wire.PRICE_UNIT: "second", wire.INPUT_SCHEMA: '{"type": "object"}',
                               wire.OUTPUT_SCHEMA: {"output": {}}})
    assert (entry.model_id, entry.price_usd, entry.input_schema, entry.output_schema) == (
        "a/b", 0.1, {"type": "object"}, {"output": {}})
    entries, total = parse_model_list({wire.CATALOG_MODELS: [{wire.MODEL_ID: "a/b"}],
                                       wire.CATALOG_TOTAL: 7})
    assert [e.model_id for e in entries] == ["a/b"] and total == 7
    with pytest.raises(ValueError):
        parse_model_list({"items": []})


# -- the wallet -------------------------------------------------------------------------------

BALANCE = f"{wire.DEFAULT_ACCOUNT_URL}{wire.BALANCE_PATH}"


def test_balance_is_read_from_the_account_host_with_the_token() -> None:
    """GET {account host}/prod/v2/balance with the bearer token answers balance_usd."""
    server = Server().on("GET", BALANCE, js(200, {"balance_usd": 12.4, "currency": "USD"}))
    assert go(server, "balance", client_kw={"account_url": wire.DEFAULT_ACCOUNT_URL}) == 12.4
    [request] = server.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("body", [{}, {"balance_usd": "12"}, {"balance_usd": None}, [1]])
def test_a_balance_answer_without_a_number_is_an_error(body: Any) -> None:
    server = Server().on("GET", BALANCE, js(200, body))
    go_err(ApiError, server, "balance", client_kw={"account_url": wire.DEFAULT_ACCOUNT_URL})


def test_an_unreachable_account_host_says_nothing_of_the_api() -> None:
    """A wallet that cannot be read is a ClientError; the API's own outage clock is untouched."""
    server = Server().on("GET", BALANCE, httpx.ConnectError)

    async def main() -> Any:
        async with make(server, account_url=wire.DEFAULT_ACCOUNT_URL) as client:
            with pytest.raises(TransportError) as info:
                await client.balance()
            return client.unreachable, info.value
    unreachable, err = asyncio.run(main())
    assert not unreachable and wire.DEFAULT_ACCOUNT_URL in str(err)


@pytest.mark.parametrize("env,base,expected", [
    ({}, None, "https://api.runcomfy.net"),
    ({"RUNCOMFY_BASE_URL": "https://model-api.runcomfy.net"}, None, "https://api.runcomfy.net"),
    ({"RUNCOMFY_BASE_URL": "http://127.0.0.1:8123/"}, None, "http://127.0.0.1:8123"),
    ({"RUNCOMFY_BASE_URL": "http://127.0.0.1:8123", "RUNCOMFY_ACCOUNT_URL": "https://acct.test/"},
     None, "https://acct.test"),
    ({}, "http://localhost:9000/api", "http://localhost:9000"),
])
def test_the_account_host(monkeypatch: pytest.MonkeyPatch, env: dict, base: str | None,
                          expected: str) -> None:
    """RUNCOMFY_ACCOUNT_URL; else the API's host when its address was changed; else RunComfy's
    core API."""
    from pipeline.client import env_account_url

    for name in ("RUNCOMFY_BASE_URL", "RUNCOMFY_ACCOUNT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_account_url(base) == expected
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKEN)
    client = RunComfyClient.from_env(base)
    assert client.account_url == expected
    asyncio.run(client.aclose())
