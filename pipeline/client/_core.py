"""RunComfyClient: the async client of RunComfy's Model API queue.

One httpx.AsyncClient carries the token to the API host only; a second one, with no
Authorization header at all, fetches output files. An asyncio.Semaphore in front of each keeps
at most `max_in_flight` calls inside httpx, so thousands of waiting callers park here, cheaply,
and not in httpx's connection pool. Foreign exceptions become ClientErrors at one place each
(`_call`, `submit`, `download`), raised `from` the original. What an answer says is judged in
`_answer`; where a client from the environment talks to is `_env`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import stamina

from .. import wire
from ..errors import (
    ApiError,
    ClientError,
    DownloadError,
    MissingToken,
    ModelNotFound,
    SubmitError,
    TransportError,
    _HttpAnswerError,
)
from ..models.catalogue import load_model
from ..secrets import scrub
from ._answer import read_answer
from ._download import download_once, refuse_bad_redirect, safe_url, within_deadline
from ._env import MISSING_TOKEN_MESSAGE, env_account_url, env_base_url
from ._inline import inline_local_images
from ._parse import (
    BodyError,
    parse_balance,
    parse_cancel,
    parse_model_entry,
    parse_model_list,
    parse_result,
    parse_status,
    parse_submit,
    valid_model_id,
    valid_request_id,
)
from ._pool import transport as pooled
from ._reach import CONNECT_FAILURES as CONNECT_FAILURES_
from ._reach import Outage, is_connect_failure
from ._retry import RetryPolicy, api_transient, download_transient, retryable_status
from ._submit import (
    NOT_ACCEPTED,
    OUTCOME_UNKNOWN,
    TRANSIENT_REFUSALS,
    classify_exception,
    classify_status,
)
from ._types import CancelInfo, DownloadInfo, ModelEntry, ResultInfo, StatusInfo, Submission

log = logging.getLogger("pipeline.client")
T = TypeVar("T")
USER_AGENT = "pipeline-runcomfy-client/0.1"
NOT_FOUND_RETRIES = 3  # outputs may appear a moment after /result names them
MAX_DOWNLOAD_BYTES = 512 * 1024**2  # a larger output file is refused (a 10 s clip is a few MB)
DOWNLOAD_DEADLINE = 600.0  # seconds one download attempt may take, however the bytes trickle in
CONNECT_TIMEOUT = 10.0  # seconds to open a connection to the API (an API answers at once)
BALANCE_TIMEOUT = 10.0  # seconds a wallet read may take (it is advice: never worth a long wait)


class RunComfyClient:
    """Async client of the RunComfy Model API queue; use `async with` or `await aclose()`."""

    def __init__(self, base_url: str, token: str, *, max_in_flight: int = 32,
                 timeout: float = 30.0, retry_attempts: int = 6, retry_timeout: float = 60.0,
                 data_uris: bool = True, retry_wait_initial: float = 0.5,
                 retry_wait_max: float = 10.0, not_found_wait: float = 0.5,
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES,
                 download_deadline: float = DOWNLOAD_DEADLINE,
                 download_read_timeout: float = wire.DOWNLOAD_READ_TIMEOUT,
                 account_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 download_transport: httpx.AsyncBaseTransport | None = None):
        if not token or not token.strip():
            raise MissingToken(MISSING_TOKEN_MESSAGE)
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_download_bytes < 1 or not download_deadline > 0 or not download_read_timeout > 0:
            raise ValueError("max_download_bytes, download_deadline and download_read_timeout "
                             "must be positive")
        self.max_download_bytes = max_download_bytes
        self.download_deadline = float(download_deadline)
        self.base_url = base_url.rstrip("/")
        # the wallet's host (RunComfy's core API); default: as `env_account_url` says
        self.account_url = (account_url or env_account_url(self.base_url)).rstrip("/")
        self.data_uris = data_uris
        self._not_found_wait = not_found_wait
        self._token = token.strip()
        self._policy = RetryPolicy(retry_attempts, retry_timeout, retry_wait_initial,
                                   retry_wait_max)
        self._outage = Outage(self.base_url)
        limits = httpx.Limits(max_connections=max_in_flight,
                              max_keepalive_connections=max_in_flight)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout,
                                                          connect=min(timeout, CONNECT_TIMEOUT)),
            limits=limits, transport=transport or pooled(limits),
            follow_redirects=False,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                     "User-Agent": USER_AGENT})
        # Output files: never the token, identity encoding so Content-Length counts raw bytes.
        # No byte for `download_read_timeout` seconds gives the attempt up (RunComfy's CLI:
        # 120 s); the whole attempt is bounded by `download_deadline` (see `download`).
        self._dl = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, read=download_read_timeout,
                                  connect=min(timeout, wire.DOWNLOAD_CONNECT_TIMEOUT)),
            limits=limits, transport=download_transport or transport or pooled(limits),
            follow_redirects=False, event_hooks={"response": [refuse_bad_redirect]},
            headers={"Accept-Encoding": "identity", "User-Agent": USER_AGENT})
        self._sem = asyncio.Semaphore(max_in_flight)
        self._dl_sem = asyncio.Semaphore(max_in_flight)
        self.calls: Counter[str] = Counter()

    @classmethod
    def from_env(cls, base_url: str | None = None, **kwargs: Any) -> RunComfyClient:
        """A client with the token from RUNCOMFY_API_TOKEN or RUNCOMFY_TOKEN; else MissingToken."""
        token = next((os.environ[n].strip() for n in wire.TOKEN_ENV_VARS
                      if os.environ.get(n, "").strip()), None)
        if token is None:
            raise MissingToken(MISSING_TOKEN_MESSAGE)
        return cls(base_url or env_base_url(), token, **kwargs)

    def __repr__(self) -> str:
        return f"RunComfyClient(base_url={self.base_url!r}, data_uris={self.data_uris})"

    async def __aenter__(self) -> RunComfyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._http.aclose()
        await self._dl.aclose()

    # -- the operations -------------------------------------------------------------------------

    async def submit(self, model_id: str, body: dict[str, Any], *,
                     base_dir: str | Path | None = None,
                     image_fields: list[str] | None = None) -> Submission:
        """POST the body (local images inlined now). Never retried; SubmitError(kind) on failure."""
        if not valid_model_id(model_id):
            raise ValueError(f"not a model id: {model_id!r}")
        if image_fields is None:
            try:
                image_fields = load_model(model_id).image_fields()
            except ModelNotFound:
                image_fields = []
        payload = inline_local_images(body, base_dir, image_fields, data_uris=self.data_uris)
        try:
            async with self._sem:
                self.calls["submit"] += 1
                started = time.monotonic()
                response = await self._http.post(wire.SUBMIT_PATH.format(model_id=model_id),
                                                 json=payload)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error: ClientError = self._transport_error("submit", exc)
            if is_connect_failure(exc):
                error = self._outage.failed(exc, started) or error
            raise SubmitError(classify_exception(exc), error.args[0], error=error) from exc
        try:
            return parse_submit(self._read("submit", response))
        except _HttpAnswerError as err:
            effective = getattr(err, "effective_status", response.status_code)
            kind = classify_status(response.status_code, err.error_code)
            raise SubmitError(kind, str(err), status_code=response.status_code,
                              error_code=err.error_code, error=err, retry_after=err.retry_after,
                              permanent=(kind == NOT_ACCEPTED and not retryable_status(effective)
                                         and effective not in TRANSIENT_REFUSALS)) from err
        except BodyError as exc:
            raise SubmitError(OUTCOME_UNKNOWN, f"HTTP {response.status_code} but {exc}",
                              status_code=response.status_code) from exc

    async def status(self, request_id: str) -> StatusInfo:
        """GET /status (retried); `completed` means finished, not succeeded."""
        body = await self._call("status", "GET", self._path(wire.STATUS_PATH, request_id))
        return self._parsed("status", parse_status, body)

    async def result(self, request_id: str) -> ResultInfo:
        """GET /result?include_cost=true (retried), normalised."""
        body = await self._call("result", "GET", self._path(wire.RESULT_PATH, request_id),
                                params=wire.INCLUDE_COST_PARAM)
        info = self._parsed("result", parse_result, body)
        if info.error:  # a reason is shown to people and stored: masked (its data is not)
            info = dataclasses.replace(info, error=self._scrub(info.error))
        return info

    async def cancel(self, request_id: str) -> CancelInfo:
        """POST /cancel (retried: cancelling twice is harmless)."""
        body = await self._call("cancel", "POST", self._path(wire.CANCEL_PATH, request_id))
        return self._parsed("cancel", parse_cancel, body)

    async def balance(self) -> float:
        """The account's wallet in USD (GET {account_url}/prod/v2/balance): one read, retried
        briefly on what is transient; a ClientError when it cannot be read. Failing to reach
        the account host says nothing of the API's (no outage is counted)."""
        url = self.account_url + wire.BALANCE_PATH
        policy = RetryPolicy(min(3, self._policy.attempts), BALANCE_TIMEOUT,
                             self._policy.wait_initial, self._policy.wait_max)
        try:
            async for attempt in stamina.retry_context(
                    on=policy.hook(api_transient), attempts=policy.attempts,
                    timeout=policy.timeout):
                with attempt:
                    async with self._sem:
                        self.calls["balance"] += 1
                        response = await self._http.get(url, timeout=BALANCE_TIMEOUT)
                    body = self._read("balance", response, outage=False)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            detail = self._scrub(str(exc)) or "no detail"
            raise TransportError(f"balance: {type(exc).__name__} talking to "
                                 f"{self.account_url}: {detail}") from exc
        return self._parsed("balance", parse_balance, body)

    def backoff(self, tries: int, hint: float | None = None) -> float:
        """Seconds to wait before retry number `tries` of anything (the client's one policy);
        while the host cannot be reached, never past the moment the client gives up on it."""
        return self._outage.cap(self._policy.backoff(tries, hint))

    @property
    def unreachable(self) -> bool:
        """The API's host has not been reached since its last failed connection."""
        return self._outage.since is not None

    @property
    def retrying(self) -> int:
        """Connections tried again since the API last answered (0 while it answers)."""
        return self._outage.retries if self._outage.since is not None else 0

    async def model_entry(self, model_id: str) -> ModelEntry:
        """GET the catalog entry (retried) and read its price fields."""
        if not valid_model_id(model_id):
            raise ValueError(f"not a model id: {model_id!r}")
        body = await self._call("model", "GET", wire.MODEL_PATH.format(model_id=model_id))
        return self._parsed("model", parse_model_entry, body)

    async def models(self, *, include_schema: bool = True, search: str | None = None,
                     page: int = wire.CATALOG_LIMIT_MAX) -> list[ModelEntry]:
        """Every entry of the catalog (GET /v1/models, a page at a time; retried)."""
        entries: list[ModelEntry] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": page, "offset": offset}
            if include_schema:
                params[wire.INCLUDE_SCHEMA_PARAM] = "true"
            if search:
                params["search"] = search
            body = await self._call("catalog", "GET", wire.MODELS_PATH, params=params)
            found, total = self._parsed("catalog", parse_model_list, body)
            entries.extend(found)
            offset += len(found)
            if not found or (total is not None and offset >= total) or \
                    (total is None and len(found) < page):
                return entries

    async def download(self, url: str, dest: Path, *, max_bytes: int | None = None,
                       deadline: float | None = None) -> DownloadInfo:
        """Stream an output file to `dest` atomically, checked; retried on transient failures.

        `max_bytes` (default: the client's `max_download_bytes`) caps the file's size and
        `deadline` (default: `download_deadline`) the seconds of each attempt, start to end.
        """
        limit = self.max_download_bytes if max_bytes is None else max_bytes
        seconds = self.download_deadline if deadline is None else deadline
        hook = self._policy.hook(download_transient(NOT_FOUND_RETRIES, self._not_found_wait))
        try:
            async for attempt in stamina.retry_context(
                    on=hook, attempts=self._policy.attempts, timeout=self._policy.timeout):
                with attempt:
                    if attempt.num > 1:
                        self.calls["download_retries"] += 1
                    async with self._dl_sem:
                        self.calls["download"] += 1
                        return await within_deadline(
                            seconds, url, download_once(self._dl, url, Path(dest), limit))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DownloadError(self._scrub(f"{type(exc).__name__}: {exc}"),
                                url=safe_url(url)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- plumbing -------------------------------------------------------------------------------

    def _path(self, template: str, request_id: str) -> str:
        if not valid_request_id(request_id):
            raise ValueError(f"not a request id: {request_id!r}")
        return template.format(request_id=request_id)

    def _scrub(self, text: str) -> str:
        return scrub(text, [self._token])

    def _parsed(self, op: str, parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except BodyError as exc:
            raise ApiError(str(exc), status_code=200, operation=op) from exc

    async def _call(self, op: str, method: str, path: str, **kwargs: Any) -> Any:
        """One idempotent call, retried by stamina on what api_transient calls transient."""
        hook = self._policy.hook(api_transient, cap=self._outage.cap)
        try:
            async for attempt in stamina.retry_context(
                    on=hook, attempts=self._policy.attempts, timeout=self._policy.timeout):
                with attempt:
                    if attempt.num > 1:
                        self.calls[f"{op}_retries"] += 1
                    async with self._sem:
                        self.calls[op] += 1
                        started = time.monotonic()
                        try:
                            response = await self._http.request(method, path, **kwargs)
                        except CONNECT_FAILURES_ as exc:
                            gave_up = self._outage.failed(exc, started)
                            if gave_up is not None:
                                raise gave_up from exc
                            raise
                    return self._read(op, response)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(op, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(self, op: str, exc: BaseException) -> TransportError:
        detail = self._scrub(str(exc)) or "no detail"
        return TransportError(f"{op}: {type(exc).__name__} talking to {self.base_url}: {detail}")

    def _read(self, op: str, response: httpx.Response, *, outage: bool = True) -> Any:
        """The JSON body of a good answer, as it came (the token is masked only in what is
        shown to people: messages, logs, stored errors; never in the data the runner acts
        on, where a short token would mangle every `https`); the matching _HttpAnswerError
        for an error answer, its message masked."""
        log.debug("%s %s %s -> %s", op, response.request.method, response.request.url.path,
                  response.status_code)
        if outage:
            self._outage.answered()
        return read_answer(op, response, self._scrub)
