"""Serving a review in-process, as the simulator is served (pipeline.serving: uvicorn in a
background thread, on a socket bound first, so the port, any free one with 0, is known at
once)."""

from __future__ import annotations

from pathlib import Path

from ..serving import BackgroundServer
from .app import build_app
from .state import Review, new_key


class ReviewServer(BackgroundServer):
    """`with ReviewServer(folder, picks) as s: open(s.url)` (`s.url` carries the key)."""

    what = "the review server"
    thread_name = "pipeline-review"

    def __init__(self, folder: Path, picks_path: Path, *, host: str = "127.0.0.1",
                 port: int = 0, key: str | None = None, seed: int | None = None):
        super().__init__(host, port)
        self.review = Review(folder, picks_path, key or new_key(), seed=seed)

    def asgi(self) -> object:
        return build_app(self.review)

    @property
    def url(self) -> str:
        """The page's URL with the key: what to give the people who may pick and vote."""
        return f"{self.base_url}/?key={self.review.key}"
