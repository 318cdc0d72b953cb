"""Pure readers of the API's JSON bodies: tolerant where the wire format is uncertain.

Every field name and status word comes from `pipeline.wire`. These functions do no I/O, so the
fixtures in tests/fixtures/wire/ are parsed by exactly the code the client runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TypeGuard

from .. import wire
from ._types import CancelInfo, ModelEntry, ResultInfo, StatusInfo, Submission

_REQUEST_ID_RE = re.compile(wire.REQUEST_ID_PATTERN)
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


class BodyError(ValueError):
    """A 2xx body that cannot be read as the answer it should be (internal; callers translate)."""


def valid_request_id(request_id: object) -> TypeGuard[str]:
    """True for an id safe to put in a URL path ([A-Za-z0-9_.-], 1 to 128 characters)."""
    return isinstance(request_id, str) and bool(_REQUEST_ID_RE.fullmatch(request_id))


def valid_model_id(model_id: str) -> bool:
    """True for a model id safe to put in a URL path (segments of [A-Za-z0-9_.-], no `..`)."""
    return bool(_MODEL_ID_RE.fullmatch(model_id)) and ".." not in model_id.split("/")


def error_text(value: Any) -> str:
    """A readable one-line string for an `error`/`detail` value: string, object or list."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        loc = value.get("loc")
        msg = next((value[k] for k in ("message", "error_message", "msg", "detail", "error")
                    if value.get(k)), None)
        kind = value.get("type") or value.get("code")
        if loc and msg:
            where = ".".join(str(p) for p in loc) if isinstance(loc, (list, tuple)) else str(loc)
            return f"{where}: {error_text(msg)}"
        if msg:
            if kind and isinstance(kind, str):
                return f"{kind}: {error_text(msg)}"
            return error_text(msg)
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, (list, tuple)):
        return "; ".join(t for t in (error_text(v) for v in value) if t)
    return str(value)


def parse_error_body(body: Any, *, ok_status: bool = False) -> tuple[Any, str] | None:
    """(error_code, message) if `body` is an error body, else None.

    On a non-2xx answer any dict counts (with `code` as a fallback for `error_code`); on a 2xx
    answer (`ok_status=True`) only a non-null `error_code` makes it an error: the quirk some
    RunComfy APIs have of answering 200 with an error [CODE-RC].
    """
    if not isinstance(body, dict):
        return None
    code = body.get(wire.ERROR_CODE)
    if ok_status and code is None:
        return None
    if code is None:
        code = body.get("code") if isinstance(body.get("code"), int) else None
    message, chosen = "", None
    for chosen in wire.ERROR_MESSAGE_FIELDS:
        message = error_text(body.get(chosen))
        if message:
            break
    detail = error_text(body.get("detail"))
    if detail and chosen != "detail" and detail not in message:
        message = f"{message}: {detail}"  # e.g. "Validation Error: body.image_urls: field required"
    return code, message


def parse_submit(body: Any) -> Submission:
    """The submit answer; BodyError if it carries no usable request id."""
    if not isinstance(body, dict):
        raise BodyError("submit answer is not a JSON object")
    request_id = body.get(wire.REQUEST_ID)
    if not valid_request_id(request_id):
        raise BodyError(f"submit answer has no valid {wire.REQUEST_ID}")
    urls = {k: body.get(k) if isinstance(body.get(k), str) else None
            for k in (wire.STATUS_URL, wire.RESULT_URL, wire.CANCEL_URL)}
    return Submission(request_id, urls[wire.STATUS_URL], urls[wire.RESULT_URL],
                      urls[wire.CANCEL_URL])


def _word(body: dict[str, Any], name: str = "status") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BodyError(f"answer has no {name!r} word")
    return value.strip().lower()


def parse_status(body: Any) -> StatusInfo:
    """A /status answer: `succeeded` -> completed, `canceled` -> cancelled, `error` -> failed."""
    if not isinstance(body, dict):
        raise BodyError("status answer is not a JSON object")
    word = _word(body)
    if word in wire.RESULT_CANCELLED:
        word = wire.CANCELLED
    elif word in wire.RESULT_FAILURE:
        word = wire.FAILED
    elif word in wire.STATUS_FINISHED:
        word = wire.COMPLETED
    position = body.get(wire.QUEUE_POSITION)
    if isinstance(position, bool) or not isinstance(position, (int, float)):
        position = None
    return StatusInfo(word, int(position) if position is not None else None, body)


def walk_urls(value: Any) -> Iterator[str]:
    """Every http(s) URL string inside `value`, depth first, in document order."""
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_urls(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk_urls(item)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def find_video_url(output: Any) -> str | None:
    """`output.video`, else `output.videos[0]`, else a URL that looks like a video, else any URL."""
    return locate_video(output)[0]


def locate_video(output: Any) -> tuple[str | None, str | None]:
    """The chosen video URL (as `find_video_url`) and where in `output` it was found."""
    if isinstance(output, dict):
        if _is_url(output.get(wire.OUTPUT_VIDEO)):
            return output[wire.OUTPUT_VIDEO], f"{wire.OUTPUT}.{wire.OUTPUT_VIDEO}"
        videos = output.get(wire.OUTPUT_VIDEOS)
        if isinstance(videos, list) and videos and _is_url(videos[0]):
            return videos[0], f"{wire.OUTPUT}.{wire.OUTPUT_VIDEOS}[0]"
    urls = list(walk_urls(output))
    for url in urls:
        if url.split("?", 1)[0].lower().endswith(wire.VIDEO_SUFFIXES):
            return url, f"a video URL elsewhere in {wire.OUTPUT}"
    if urls:
        return urls[0], f"the first URL in {wire.OUTPUT} (none looks like a video)"
    return None, None


def pick_outputs(output: Any, keys: tuple[str, ...] | list[str], inputs: Any = None
                 ) -> list[str]:
    """The URLs of what a model made: those under its output keys, in the order given (its
    output schema names them: `image`, `images`, `video`, `videos`); failing that, every URL
    in `output` that is not one of the request's own inputs (results may echo their inputs)."""
    found: list[str] = []
    if isinstance(output, dict):
        for key in keys:
            found.extend(walk_urls(output.get(key)))
    if not found:
        echoed = set(walk_urls(inputs))
        found = [u for u in walk_urls(output) if u not in echoed]
    return list(dict.fromkeys(found))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_result(body: Any) -> ResultInfo:
    """A /result answer, normalised to succeeded | failed | cancelled, or a word saying it is
    not finished: in_queue, in_progress, another live word RunComfy's own code knows
    (`pending`, `waiting`, `starting`, `processing`), or any other word as it came (lower-
    cased): the caller polls on (its polling.timeout bounds the wait), never fails the cell.
    A success word with an `error` and no output counts as failed.
    """
    if not isinstance(body, dict):
        raise BodyError("result answer is not a JSON object")
    word = _word(body)
    output = body.get(wire.OUTPUT)
    outputs = tuple(walk_urls(output))
    error = error_text(body.get(wire.ERROR)) or None
    if word in wire.RESULT_SUCCESS:
        status = wire.FAILED if (error and not outputs) else wire.SUCCEEDED
    elif word in wire.RESULT_FAILURE:
        status = wire.FAILED
        error = error or "the API reported failure without a reason"
    elif word in wire.RESULT_CANCELLED:
        status = wire.CANCELLED
    else:  # live, or a word we do not know: not finished
        status = word
    video_url, video_from = locate_video(output) if status == wire.SUCCEEDED else (None, None)
    return ResultInfo(
        status=status,
        outputs=outputs,
        video_url=video_url,
        video_from=video_from,
        cost=_number(body.get(wire.COST)),
        error=error if status == wire.FAILED else None,
        created_at=_text(body.get(wire.CREATED_AT)),
        finished_at=_text(body.get(wire.FINISHED_AT)),
        raw=body,
    )


def finished_result(status: str) -> bool:
    """Whether a normalised /result status is an end (else the request is still live, or its
    word is unknown: poll on)."""
    return status in (wire.SUCCEEDED, wire.FAILED, wire.CANCELLED)


def known_live(word: str) -> bool:
    """A status word that RunComfy's own code counts as still running."""
    return word in wire.ALL_LIVE_STATUSES


def parse_balance(body: Any) -> float:
    """The wallet's `balance_usd` (a finite number); BodyError otherwise."""
    if not isinstance(body, dict):
        raise BodyError("balance answer is not a JSON object")
    value = body.get(wire.BALANCE_USD)
    usd = _number(value) if not isinstance(value, str) else None
    if usd is None or usd != usd or usd in (float("inf"), float("-inf")):
        raise BodyError(f"balance answer has no numeric {wire.BALANCE_USD!r}")
    return usd


def parse_cancel(body: Any) -> CancelInfo:
    """A cancel answer; `outcome` lower-cased, "unknown" when missing."""
    if not isinstance(body, dict):
        raise BodyError("cancel answer is not a JSON object")
    outcome = body.get(wire.OUTCOME)
    outcome = outcome.strip().lower() if isinstance(outcome, str) and outcome.strip() else "unknown"
    if outcome == "canceled":
        outcome = wire.OUTCOME_CANCELLED
    status = body.get("status")
    return CancelInfo(outcome, status.lower() if isinstance(status, str) else None, body)


def parse_model_entry(body: Any) -> ModelEntry:
    """The catalog entry's price fields (top level or under `pricing`) and its input and
    output schemas; None where absent."""
    if not isinstance(body, dict):
        raise BodyError("model entry is not a JSON object")
    sources = [body]
    for key in ("pricing", "price", "model"):
        if isinstance(body.get(key), dict):
            sources.append(body[key])

    def first(name: str) -> Any:
        return next((s[name] for s in sources if s.get(name) is not None), None)

    return ModelEntry(_number(first(wire.PRICE_USD)), _text(first(wire.PRICE_UNIT)),
                      _text(first(wire.PRICE_NOTE)), body,
                      input_schema=_object(first(wire.INPUT_SCHEMA)),
                      output_schema=_object(first(wire.OUTPUT_SCHEMA)),
                      model_id=_text(body.get(wire.MODEL_ID)))


def _object(value: Any) -> dict | None:
    """A schema object; a schema sent as JSON text is read too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def parse_model_list(body: Any) -> tuple[list[ModelEntry], int | None]:
    """A catalog page: its entries and the catalog's total (None when not said)."""
    if not isinstance(body, dict) or not isinstance(body.get(wire.CATALOG_MODELS), list):
        raise BodyError(f"catalog answer has no {wire.CATALOG_MODELS!r} list")
    entries = [parse_model_entry(e) for e in body[wire.CATALOG_MODELS] if isinstance(e, dict)]
    total = body.get(wire.CATALOG_TOTAL)
    return entries, total if isinstance(total, int) and not isinstance(total, bool) else None
