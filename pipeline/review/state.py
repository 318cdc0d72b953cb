"""What a served review knows: the job's cells (read again when the job changes), the picks
file, the votes, and the pairs on raters' screens. Thread-safe (one lock): Starlette runs the
endpoints in worker threads.

Reading is cheap when nothing changed: the job is scanned again (pipeline.report.scan) only
when its journal or its plan changed since the last scan (their sizes and times; the page
also when the votes changed, for their scores),
so a page polled every second costs a few stat calls, and new cells show as a running job
finishes them. Writes go through here: a pick (the picks file, replaced atomically,
pipeline.report.picking) and a vote (ratings.jsonl, appended and fsynced, pipeline.job.ratings).
A write that cannot be done raises Refused with an HTTP status, before anything is written.
"""

from __future__ import annotations

import io
import random
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..job.folder import JobFolder
from ..job.ratings import append_vote, read_votes, vote
from ..job.records import DONE
from ..media.posters import IMAGE_SUFFIXES
from ..report.page import PageContext, pick_of
from ..report.picking import read_picks, write_picks
from ..report.scan import scan
from ..report.write import stream_page
from .pairs import next_pair, pair_key

MAX_TOKENS = 4096  # clip tokens remembered (a rater's page asks for the pair it shows)


class Refused(Exception):
    """A request that cannot be served as asked: its HTTP status and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Clip:
    """A cell as the review uses it: its first output file, flags, pick line."""

    id: str
    state: str
    path: str | None  # relative to the job folder; None: nothing to look at
    flagged: bool
    pick: dict[str, Any]


@dataclass
class Pair:
    """A pair on a rater's screen: `left` and `right` cell ids, and their clip tokens."""

    token: str
    rater: str
    left: str
    right: str
    left_clip: str
    right_clip: str


class Review:
    """One job under review: its folder, where its picks go, and the key writes need."""

    def __init__(self, folder: Path, picks_path: Path, key: str, *, seed: int | None = None):
        self.folder = JobFolder.at(folder)
        self.picks_path = Path(picks_path)
        self.key = key
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.votes: list[dict[str, Any]] = read_votes(self.folder.ratings)
        self.cast = 0  # votes cast through this server
        self.pairs: dict[str, Pair] = {}  # pair token -> the pair
        self.showing: dict[str, str] = {}  # rater -> the token of the pair on their screen
        self.clips: OrderedDict[str, Path] = OrderedDict()  # clip token -> its file
        self._stamp: tuple | None = None
        self._cells: dict[str, Clip] = {}
        self._page = ""

    # --- reading the job ------------------------------------------------------------------
    def stamp(self, votes: bool = True) -> tuple:
        """What the page was made from: the journal's, plan's (and votes') sizes and times."""
        out: list[int] = []
        paths = [self.folder.journal, self.folder.plan] + ([self.folder.ratings] if votes else [])
        for path in paths:
            try:
                st = path.stat()
                out += [st.st_size, st.st_mtime_ns]
            except OSError:
                out += [-1, -1]
        return tuple(out)

    def _fresh(self, page: bool) -> None:
        """Scan the job again when it changed (the cells: its journal or plan; the page also
        shows the votes' scores)."""
        stamp = self.stamp()
        if stamp == self._stamp or (not page and stamp[:4] == (self._stamp or ())[:4]):
            return
        cells: dict[str, Clip] = {}
        out = io.StringIO()
        with scan(self.folder) as scanned:
            ctx = PageContext.of(scanned.report, self.folder.path)

            def each(_i: int, c: dict[str, Any]) -> None:
                cells[c["id"]] = _clip(c, pick_of(c, ctx))

            stream_page(scanned, self.folder.path, out, served=self.served(stamp), each=each)
        self._cells, self._page, self._stamp = cells, out.getvalue(), stamp

    def served(self, stamp: tuple) -> dict[str, Any]:
        """The page's `served` settings (page.settings): the API's paths and the page's stamp."""
        return {"state": "api/state", "picks": "api/picks", "rank": "rank",
                "stamp": _stamp_text(stamp)}

    def page(self) -> str:
        with self.lock:
            self._fresh(page=True)
            return self._page

    def cells(self) -> dict[str, Clip]:
        with self.lock:
            self._fresh(page=False)
            return self._cells

    def state(self) -> dict[str, Any]:
        """What a served page polls: the job's stamp (changed: new cells) and the picks."""
        with self.lock:
            stamp = self.stamp()
            picks = self._read_picks()
        return {"stamp": _stamp_text(stamp), "picks": [str(p["cell"]) for p in picks],
                "by": {str(p["cell"]): p.get("by") for p in picks if p.get("by")},
                "votes": len(self.votes)}

    # --- picks ----------------------------------------------------------------------------
    def _read_picks(self) -> list[dict[str, Any]]:
        if not self.picks_path.exists():
            return []
        try:
            return read_picks(self.picks_path)
        except Exception as exc:  # noqa: BLE001 - a broken file is the user's to fix
            raise Refused(409, f"{exc}; fix or remove it, then star again") from None

    def set_pick(self, cell: str, on: bool, by: str) -> dict[str, Any]:
        """Star (on) or unstar a cell: picks.jsonl is rewritten whole, atomically."""
        with self.lock:
            clip = self.cells().get(cell)
            if clip is None:
                raise Refused(404, f"no cell {cell!r} in this job")
            rows = self._read_picks()
            mine = [r for r in rows if str(r["cell"]) == cell]
            if on and not mine:
                rows.append({**clip.pick, **({"by": by} if by else {})})
            elif not on and mine:
                rows = [r for r in rows if str(r["cell"]) != cell]
            else:
                return self.state()
            write_picks(rows, self.picks_path)
            return self.state()

    # --- ranking --------------------------------------------------------------------------
    def pool(self, flagged: bool) -> list[str]:
        """The clips a ranking shows: done, with a file; flagged ones only when asked."""
        return [c.id for c in self.cells().values()
                if c.state == DONE and c.path and (flagged or not c.flagged)]

    def next_for(self, rater: str, flagged: bool = False) -> dict[str, Any]:
        """The pair on `rater`'s screen, or a new one; {"pair": None} when none is left."""
        with self.lock:
            token = self.showing.get(rater)
            if token in self.pairs:
                return self._shown(self.pairs[token])
            held = {pair_key(p.left, p.right) for p in self.pairs.values() if p.rater != rater}
            chosen = next_pair(self.pool(flagged), self.votes, rater, held, self.rng)
            mine = sum(1 for v in self.votes if v.get("rater") == rater)
            if chosen is None:
                return {"pair": None, "votes": mine,
                        "message": "You have compared every pair there is. Thank you!"}
            cells = self.cells()
            pair = Pair(secrets.token_urlsafe(12), rater, chosen[0], chosen[1],
                        self._clip_token(cells[chosen[0]]), self._clip_token(cells[chosen[1]]))
            self.pairs[pair.token] = pair
            self.showing[rater] = pair.token
            return self._shown(pair)

    def _shown(self, p: Pair) -> dict[str, Any]:
        mine = sum(1 for v in self.votes if v.get("rater") == p.rater)
        return {"pair": p.token, "votes": mine,
                "left": {"src": f"clip/{p.left_clip}", "kind": _kind(self.clips[p.left_clip])},
                "right": {"src": f"clip/{p.right_clip}",
                          "kind": _kind(self.clips[p.right_clip])}}

    def _clip_token(self, clip: Clip) -> str:
        token = secrets.token_urlsafe(12)
        assert clip.path is not None
        self.clips[token] = self.folder.path / clip.path
        while len(self.clips) > MAX_TOKENS:
            self.clips.popitem(last=False)
        return token

    def clip_file(self, token: str) -> Path:
        with self.lock:
            path = self.clips.get(token)
        if path is None or not path.is_file():
            raise Refused(404, "no such clip")
        return path

    def vote(self, token: str, choice: str, rater: str | None = None) -> dict[str, Any]:
        """A rater's verdict on the pair they were shown: appended to ratings.jsonl."""
        winner = {"left": "a", "right": "b", "tie": "tie"}.get(choice)
        if winner is None:
            raise Refused(400, "winner must be left, right or tie")
        with self.lock:
            pair = self.pairs.get(token)
            if pair is None:
                raise Refused(409, "this pair is not on anyone's screen (voted already, or the "
                                   "server restarted): ask for the next pair")
            if rater is not None and rater != pair.rater:
                raise Refused(403, "this pair was shown to another rater")
            line = vote(pair.rater, pair.left, pair.right, winner)
            append_vote(self.folder.ratings, line)
            self.votes.append(line)
            self.cast += 1
            del self.pairs[token]
            if self.showing.get(pair.rater) == token:
                del self.showing[pair.rater]
            return {"ok": True, "votes": sum(1 for v in self.votes
                                            if v.get("rater") == pair.rater)}

    # --- files of the job -----------------------------------------------------------------
    def job_file(self, relative: str) -> Path:
        """A file of the job folder the page links to (media, posters, strips, reports);
        nothing outside the folder, no hidden file, no state file."""
        root = self.folder.path.resolve()
        parts = Path(relative).parts
        if not relative or Path(relative).is_absolute() or any(
                p in ("..", "") or p.startswith(".") for p in parts):
            raise Refused(404, "not a file of this job")
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise Refused(404, "not a file of this job")
        if path.suffix.lower() not in SERVED_SUFFIXES and path.name not in ("report.json",
                                                                           "report.md"):
            raise Refused(404, "not a file the page shows")
        return path


SERVED_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".mkv", ".m4v", *IMAGE_SUFFIXES})


def _clip(c: dict[str, Any], pick: dict[str, Any]) -> Clip:
    f = c["files"][0] if c["files"] else None
    path = f["path"] if f and f["exists"] and f["path"] else None
    qa = c.get("qa") or {}
    flagged = bool(qa.get("flags")) if isinstance(qa, dict) else False
    return Clip(c["id"], c["state"], path, flagged, pick)


def _kind(path: Path) -> str:
    return "image" if path.name.lower().endswith(IMAGE_SUFFIXES) else "video"


def _stamp_text(stamp: tuple) -> str:
    return ".".join(map(str, stamp))


def new_key() -> str:
    """The secret a start of the server prints in its URL."""
    return secrets.token_urlsafe(18)


def same_key(given: str | None, key: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), key.encode())



