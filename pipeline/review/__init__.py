"""The review stage: a job's report served to a team (`pipeline review MANIFEST`), with picks
kept in the job's picks.jsonl and a blind ranking (/rank) whose votes go to ratings.jsonl.

    with ReviewServer(folder, picks_path) as server:   # pipeline.api.review starts one
        print(server.url)                              # http://127.0.0.1:PORT/?key=...

pipeline.review.pairs chooses each rater's next pair; pipeline.review.state is what the
server knows and writes; pipeline.review.app its routes.
"""

from .server import ReviewServer

__all__ = ["ReviewServer"]
