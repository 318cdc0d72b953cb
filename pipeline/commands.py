"""The job commands of `pipeline`, validate to review: their options, one call each into
pipeline.api, and the printing of its answer. Registered by pipeline.cli, as account/, catalog/
and sim/ register theirs; each command imports what it uses when it runs (`--version`,
`--help` and `status` start no simulator, server or video library).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .argtypes import positive_int
from .errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the job commands to `pipeline`'s subparsers, in the order --help lists them."""
    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check manifests and every request they expand to")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("--offline", action="store_true",
                   help="do not fetch remote images (their checks are skipped with a warning)")
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="let manifests name files outside their project")
    p.set_defaults(func=cmd_validate)

    p = job_parser(sub, "plan", "show the cells a manifest expands to, with cost and duration",
                   cmd_plan, out_help="output folder whose state to show")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--offline", action="store_true",
                   help="do not fetch remote images (their checks are skipped with a warning)")
    p.add_argument("--wide", action="store_true",
                   help="one line per cell: prompts and values in full, not wrapped")
    add_only(p, "show only the cells with this value")

    p = job_parser(sub, "run", "execute every cell that is not done (resumes)", cmd_run)
    p.add_argument("--backend", choices=["runcomfy", "sim"],
                   help="override the manifest's backend (sim: the offline simulator)")
    p.add_argument("--concurrency", type=_concurrency, metavar="N|auto",
                   help="requests live on the server at once, or auto: learnt from the server")
    add_only(p, "run only the cells with this value")
    p.add_argument("--retry-failed", action="store_true",
                   help="give failed cells another max_attempts tries")
    p.add_argument("--resubmit-unknown", action="store_true",
                   help="send again cells whose submit outcome is unknown (may pay twice)")
    p.add_argument("--cancel-on-interrupt", action="store_true",
                   help="on Ctrl-C, cancel live requests instead of leaving them to finish")
    p.add_argument("--allow-schema-change", action="store_true",
                   help="go on although the model schema changed since the state was written")
    p.add_argument("--allow-unknown-price", action="store_true",
                   help="run under a budget although the model's price is unknown")
    p.add_argument("--no-canary", action="store_true",
                   help="submit at full concurrency at once, without proving one cell first "
                        "(run.canary)")
    p.add_argument("--no-progress", action="store_true", help="plain log lines, no progress bar")
    p.add_argument("--progress", choices=["bar", "plain", "json", "none"],
                   help="how progress is shown on stderr (json: one object per change)")
    p.add_argument("--ledger", metavar="URL",
                   help="share the account with every runner naming this team ledger "
                   "(postgresql://...; default: $PIPELINE_LEDGER)")
    p.add_argument("--ignore-balance", action="store_true",
                   help="go on when the account's balance is below what the run still has to "
                        "send (it is read before the first submit and at each tenth spent)")

    p = job_parser(sub, "status", "counts, spend, ETA and failures of a job", cmd_status)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    add_only(p, "count only the cells with this value")

    job_parser(sub, "cancel", "cancel the job's queued and running requests", cmd_cancel)

    p = job_parser(sub, "report", "write report.md, report.html and report.json of a job",
                   cmd_report)
    p.add_argument("--rows", metavar="AXIS", help="matrix axis for the grid's rows")
    p.add_argument("--cols", metavar="AXIS", help="matrix axis for the grid's columns")
    add_only(p, "report only the cells with this value")

    p = sub.add_parser("picks", help="pick cells of a job for a final render (picks.jsonl), "
                                     "or list the picks")
    p.add_argument("manifest", metavar="MANIFEST")
    add_only(p, "pick these cells (none: list the picks already made)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="the picks file (default: picks.jsonl beside the manifest)")
    p.add_argument("--job-out", type=Path, metavar="DIR",
                   help="the job's output folder, when it is not the manifest's default")
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="let the manifest name files outside its project")
    p.add_argument("--top", type=positive_int, metavar="K",
                   help="pick the K best-rated cells (votes of pipeline review's /rank)")
    p.add_argument("--ratings", action="store_true",
                   help="print the ranking of the rated cells (best first) and pick nothing")
    p.set_defaults(func=cmd_picks)

    p = job_parser(sub, "review", "serve the job's report to a team: picks shared in "
                                  "picks.jsonl, blind ranking at /rank", cmd_review)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")


def add_only(p: argparse.ArgumentParser, what: str) -> None:
    """`--only KEY=VALUE` (repeatable), read by pipeline.job.select for every command."""
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help=f"{what}: a matrix or input value, or cell=ID (6+ hex digits); the "
                        "same key again means either value, different keys all of them")


def job_parser(sub: Any, name: str, help_text: str, func: Any, *,
               out_help: str = "output folder (default from manifest)") -> argparse.ArgumentParser:
    """A subcommand about one job: MANIFEST, --out DIR and --allow-outside-paths."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--out", type=Path, metavar="DIR", help=out_help)
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="let the manifest name files outside its project")
    p.set_defaults(func=func)
    return p


def cmd_validate(args: argparse.Namespace) -> int:
    from .api import validate

    report = validate(args.manifests, offline=args.offline,
                      allow_outside=args.allow_outside_paths)
    for problem in report.problems:  # the bad files' problems, then an ok per good file
        print(problem, file=sys.stderr)
    sys.stderr.flush()
    for line in report.summaries:
        print(line)
    return 2 if report.failed else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .api import plan
    from .job.plan_table import plan_table

    planned = plan(args.manifest, out=args.out, only=args.only, offline=args.offline,
                   allow_outside=args.allow_outside_paths)
    if args.json:
        from .bulk import paused
        from .jsonio import dump_indented

        # written cell by cell (each cell's dict made as it is written), so a million-cell
        # plan never becomes one huge string or list; the pieces are gathered into ~64 KB writes.
        out = _Gathered(sys.stdout)
        with paused():
            dump_indented(planned.as_json(streamed=True), out.write)
        out.write("\n")
        out.flush()
    else:
        print(plan_table(planned.forecast, wide=args.wide, selection=planned.selection))
        line, _ = planned.balance_lines()
        if line is not None:
            print(line)
    for warning in planned.warnings:
        print(warning, file=sys.stderr)
    return 0


class _Gathered:
    """A text stream for many tiny writes: they are joined into few large ones."""

    def __init__(self, stream: Any, size: int = 1 << 16):
        self.stream, self.size, self.length = stream, size, 0
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        if self.length >= self.size:
            self.flush()

    def flush(self) -> None:
        self.stream.write("".join(self.parts))
        self.parts, self.length = [], 0


def _concurrency(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def cmd_run(args: argparse.Namespace) -> int:
    from .api import RunOptions, run
    from .job.records import resume_hint
    from .job.select import parse_only
    from .job.tally import figures_line

    options = RunOptions(
        backend=args.backend, concurrency=None if args.concurrency == "auto" else args.concurrency,
        auto=args.concurrency == "auto", only=parse_only(args.only),
        retry_failed=args.retry_failed, resubmit_unknown=args.resubmit_unknown,
        cancel_on_interrupt=args.cancel_on_interrupt, out=args.out,
        allow_schema_change=args.allow_schema_change,
        allow_unknown_price=args.allow_unknown_price, no_canary=args.no_canary,
        progress=args.progress or (False if args.no_progress else None), ledger=args.ledger,
        ignore_balance=args.ignore_balance)
    summary = run(args.manifest, options, allow_outside=args.allow_outside_paths,
                  warn=lambda line: print(line, file=sys.stderr))
    for path in summary.reports:
        print(f"report: {path}")
    print(f"{summary.figures['job']}: {figures_line(summary.figures)}; "
          f"outputs in {summary.out_dir}")
    if summary.cancelled is not None:
        print(f"cancel: {summary.cancelled.text()}")
    if summary.stopped and not summary.interrupted:
        print(f"stopped submitting: {summary.stopped}")
    if summary.exit_code != 0:
        again = resume_hint(args.manifest, summary.counts, args.out)
        print(f"to resume: {again['command']}"
              + (f" ({'; '.join(again['hints'])})" if again["hints"] else ""))
    return summary.exit_code


def cmd_status(args: argparse.Namespace) -> int:
    from .api import status
    from .job.status import status_text

    found = status(args.manifest, out=args.out, only=args.only,
                   allow_outside=args.allow_outside_paths)
    if args.json:
        import json

        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        print(status_text(found))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .api import report

    for path in report(args.manifest, out=args.out, rows=args.rows, cols=args.cols,
                       only=args.only, allow_outside=args.allow_outside_paths):
        print(path)
    return 0


def cmd_picks(args: argparse.Namespace) -> int:
    from .api import list_picks_of, picks

    if args.ratings:
        from .api import ratings

        if args.only or args.top:
            raise UsageError("pipeline picks --ratings prints the ranking; give it without "
                             "--only or --top")
        rows = ratings(args.manifest, out=args.job_out, allow_outside=args.allow_outside_paths)
        if not rows:
            print("no votes yet: rank the clips with pipeline review MANIFEST, then /rank")
        for c in rows:
            r = c["rating"]
            print(f"{r['rank']:>4}  {r['score']:+.2f} ± {r['uncertainty']:.2f}  "
                  f"{r['wins']}-{r['losses']}-{r['ties']} of {r['votes']}  {c['id']}  "
                  f"{c['label']}")
        return 0
    if not args.only and args.top is None:
        for line in list_picks_of(args.manifest, out=args.out, job_out=args.job_out,
                                  allow_outside=args.allow_outside_paths):
            print(line)
        return 0
    picked = picks(args.manifest, args.only, out=args.out, job_out=args.job_out,
                   allow_outside=args.allow_outside_paths, top=args.top)
    n = len(picked.picks)
    print(f"{picked.path}: {n} pick{'s' if n != 1 else ''}")
    for row, state in picked.picks:
        unseen = "" if state == "done" else f" ({state}: no clip to look at yet)"
        print(f"  {row['cell']}  {row['label']}{unseen}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 130) or SIGTERM (exit 0); the URL with its key first."""
    import webbrowser

    from .api import review
    from .serving import until_stopped

    with until_stopped() as wait, \
            review(args.manifest, out=args.out, host=args.host, port=args.port,
                   allow_outside=args.allow_outside_paths) as server:
        print(server.url, flush=True)
        key = server.review.key
        print(f"pipeline review: serving {server.review.folder} on {server.base_url}; "
              f"give the URL above to whoever may star and vote; blind ranking: "
              f"{server.base_url}/rank?rater=NAME&key={key}; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        if args.open:
            webbrowser.open(server.url)
        return wait()


def cmd_cancel(args: argparse.Namespace) -> int:
    from .api import cancel

    done = cancel(args.manifest, out=args.out, allow_outside=args.allow_outside_paths,
                  say=lambda line: print(line, file=sys.stderr, flush=True))
    print(done.text())
    return 0
