"""The review server's routes (Starlette): the report page, the job's media, a small JSON API
and the blind ranking.

    GET  /                      the job's report page (served: stars go to the API)
    GET  /api/state             the page's poll: the job's stamp (new cells) and the picks
    POST /api/picks?key=K       {"cell": ID, "on": true|false, "by": NAME}: star or unstar
    GET  /rank?rater=NAME&key=K the blind ranking page of one rater (templates/rank.html)
    GET  /api/rank/next?rater=NAME&key=K[&flagged=1]   the pair on that rater's screen
    POST /api/rank/vote?key=K   {"pair": TOKEN, "winner": "left"|"right"|"tie", "rater": NAME}
    GET  /clip/TOKEN            a clip of a pair, by an opaque token (no id, no file name)
    GET  /PATH                  a file of the job folder that the page shows (media, posters,
                                strips, report.json/md); nothing outside the folder

Endpoints that read the job or write run in worker threads (Starlette's pool for the plain
functions); the state is guarded by one lock (pipeline.review.state). Reads are open to
whoever reaches the server (it binds 127.0.0.1 unless told otherwise); whatever writes, and
the ranking (it hands out pairs), needs the key printed in the server's URL. A refused
request is a 4xx with {"error": ...} and changes no file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .state import Refused, Review, same_key

TEMPLATES = Path(__file__).parent / "templates"
MAX_BODY = 16_384  # bytes of a JSON request body
NAME_LENGTH = 60  # characters of a rater's or picker's name
NO_STORE = {"Cache-Control": "no-store"}


def build_app(review: Review) -> Starlette:
    def keyed(request: Request) -> None:
        if not same_key(request.query_params.get("key"), review.key):
            raise Refused(403, "this needs the key: open the URL the server printed "
                               "(it ends in ?key=...)")

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise Refused(413, "request body too large")
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            raise Refused(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise Refused(400, "the body must be a JSON object")
        return data

    def name(value: Any, what: str, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > NAME_LENGTH or \
                any(ord(ch) < 32 for ch in value):
            raise Refused(400, f"{what}: give a name of 1 to {NAME_LENGTH} characters")
        return value.strip()

    def index(request: Request) -> Response:
        return HTMLResponse(review.page(), headers=NO_STORE)

    def state(request: Request) -> Response:
        return JSONResponse(review.state(), headers=NO_STORE)

    async def picks(request: Request) -> Response:
        keyed(request)
        data = await body(request)
        cell, on = data.get("cell"), data.get("on")
        if not isinstance(cell, str) or not isinstance(on, bool):
            raise Refused(400, "give {\"cell\": ID, \"on\": true or false}")
        by = name(data.get("by"), "by", required=False)
        done = await run_in_threadpool(review.set_pick, cell, on, by)
        return JSONResponse(done, headers=NO_STORE)

    def rank(request: Request) -> Response:
        keyed(request)
        name(request.query_params.get("rater"), "rater (add &rater=YOUR_NAME to the URL)")
        return HTMLResponse((TEMPLATES / "rank.html").read_text(encoding="utf-8"),
                            headers=NO_STORE)

    def next_pair(request: Request) -> Response:
        keyed(request)
        rater = name(request.query_params.get("rater"), "rater")
        flagged = request.query_params.get("flagged") in ("1", "true", "yes")
        return JSONResponse(review.next_for(rater, flagged), headers=NO_STORE)

    async def vote(request: Request) -> Response:
        keyed(request)
        data = await body(request)
        token, winner = data.get("pair"), data.get("winner")
        if not isinstance(token, str) or not isinstance(winner, str):
            raise Refused(400, "give {\"pair\": TOKEN, \"winner\": left, right or tie}")
        rater = name(data.get("rater"), "rater", required=False) or None
        done = await run_in_threadpool(review.vote, token, winner, rater)
        return JSONResponse(done, headers=NO_STORE)

    def clip(request: Request) -> Response:
        return FileResponse(review.clip_file(request.path_params["token"]),
                            headers=NO_STORE)

    def job_file(request: Request) -> Response:
        return FileResponse(review.job_file(request.path_params["path"]))

    def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=NO_STORE)

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/picks", picks, methods=["POST"]),
        Route("/rank", rank),
        Route("/api/rank/next", next_pair),
        Route("/api/rank/vote", vote, methods=["POST"]),
        Route("/clip/{token}", clip),
        Route("/{path:path}", job_file),
    ]
    return Starlette(routes=routes, exception_handlers={Refused: refused})
