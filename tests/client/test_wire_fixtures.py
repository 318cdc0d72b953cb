"""The documented example bodies (tests/fixtures/wire/) read by the client's own parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.client import (
    inline_local_images,
    parse_cancel,
    parse_error_body,
    parse_result,
    parse_status,
    parse_submit,
)
from pipeline.client._parse import BodyError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wire"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_every_fixture_is_covered() -> None:
    """Each fixture file is listed in one of the tables below, so none goes unparsed."""
    covered = ({"submit_request_dreamina.json", "submit_ok.json", "submit_ok_doc.json"}
               | set(RESULTS) | set(ERRORS) | set(CANCELS) | {"status_in_queue.json"})
    assert {p.name for p in FIXTURES.glob("*.json")} == covered


def test_submit_answer() -> None:
    """The documented submit answer gives the request id and its three URLs."""
    sub = parse_submit(load("submit_ok.json"))
    assert sub.request_id == "5b0c7f2e-1d3a-4c55-9a7e-0f6b2d8c9e11"
    assert sub.status_url.endswith(f"/v1/requests/{sub.request_id}/status")
    assert sub.result_url.endswith("/result") and sub.cancel_url.endswith("/cancel")


def test_submit_answer_with_doc_placeholder_is_unreadable() -> None:
    """The doc's literal `{request_id}` placeholder is not a usable id (it would go into a URL
    path)."""
    with pytest.raises(BodyError):
        parse_submit(load("submit_ok_doc.json"))


def test_submit_request_passes_unchanged() -> None:
    """The documented request body has only a public URL, which image inlining leaves alone."""
    body = load("submit_request_dreamina.json")
    assert inline_local_images(body, None, ["image_urls"]) == body


def test_status_in_queue() -> None:
    """The documented /status answer is queued at position 3 and not finished."""
    info = parse_status(load("status_in_queue.json"))
    assert (info.status, info.queue_position, info.finished) == ("in_queue", 3, False)


STORAGE = "https://playgrounds-storage-public.runcomfy.net"
RESULTS = {
    "result_succeeded_generic_doc.json": ("succeeded", f"{STORAGE}/a.mp4", None, 3),
    "result_in_progress.json": ("in_progress", None, None, 0),
    "result_succeeded.json": ("succeeded", "https://<host>/outputs/5b0c….mp4", None, 1),
    "result_failed.json": ("failed", None, "model refused the prompt", 0),
    "result_failed_3p.json": ("failed", None, "model refused the prompt", 0),
    "result_cancelled.json": ("cancelled", None, None, 0),
    "result_images_cli_skill.json": ("succeeded", f"{STORAGE}/.../result.png", None, 1),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_fixture(name: str) -> None:
    """Each documented /result body yields the expected status, video URL, error and URL count."""
    status, video, error, n_urls = RESULTS[name]
    info = parse_result(load(name))
    assert (info.status, info.video_url, info.error, len(info.outputs)) == \
        (status, video, error, n_urls)


def test_result_timestamps() -> None:
    """created_at and finished_at are carried through as given."""
    info = parse_result(load("result_succeeded.json"))
    assert (info.created_at, info.finished_at) == ("2025-01-01T00:00:00Z", "2025-01-01T00:01:10Z")


ERRORS = {
    "error_400001.json": (400001, "InvalidResourceIdentifier: unknown model_id"),
    "error_400001_sim.json": (400001, "InvalidResourceIdentifier"),
    "error_422001.json": (422001, "Validation Error: body.image_urls: field required"),
    "error_400004_3p.json": (400004, "UserAccountError"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_fixture(name: str) -> None:
    """Each documented error body yields its error_code and the first message field present."""
    assert parse_error_body(load(name)) == ERRORS[name]


@pytest.mark.parametrize("name", ["error_400001.json", "error_422001.json"])
def test_error_fixture_in_a_200_is_an_error(name: str) -> None:
    """The same bodies under HTTP 200 still count as errors (the 200-with-error_code quirk)."""
    assert parse_error_body(load(name), ok_status=True) is not None


CANCELS = {
    "cancel_cancelled.json": ("cancelled", True),
    "cancel_not_cancellable.json": ("not_cancellable", False),
}


@pytest.mark.parametrize("name", sorted(CANCELS))
def test_cancel_fixture(name: str) -> None:
    """Each cancel answer yields its outcome."""
    info = parse_cancel(load(name))
    assert (info.outcome, info.cancelled) == CANCELS[name]
