"""The `pipeline` command: a thin layer over the library; every user error ends in one line.

Global options (`--verbose`, and a command's own `--json`, `--no-progress`, ...) may come before
or after the command: `pipeline --json status x.yaml` is `pipeline status x.yaml --json`.
`--verbose` shows this tool's own debug lines (loggers `pipeline.*`), not other libraries'.
The job commands (validate to review) are pipeline.commands; account/, catalog/ and sim/
register their own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO, cast

from .errors import PipelineError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `pipeline run: error: ... (see pipeline run
    --help)`, exit 2 (its subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}{_choice_hint(message)} "
                     f"(see {self.prog} --help)\n")


def _choice_hint(message: str) -> str:
    """The did-you-mean of argparse's `invalid choice: 'X' (choose from 'a', 'b')`."""
    import re

    found = re.match(r"argument \S+: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if not found:
        return ""
    return _near(found.group(1), re.findall(r"'([^']*)'", found.group(2)))


def _near(word: str, options: Sequence[str], cutoff: float = 0.6) -> str:
    """` (did you mean X?)` for the nearest option, as manifest keys get it; else ""."""
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]}?)" if close else ""


def unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 extras: list[str]) -> NoReturn:
    """Refuse arguments no option takes, from the parser of the command (and verb) given,
    with the did-you-mean of a mistyped flag among that command's option strings."""
    while True:  # down to the innermost command given: `account status`, `models check`
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs and subs[0].dest else None
        if not subs or chosen not in subs[0].choices:
            break
        parser = subs[0].choices[chosen]
    flags = [a.split("=", 1)[0] for a in extras if a.startswith("-")]
    hint = _near(flags[0], [o for o in parser._option_string_actions if o.startswith("--")],
                 cutoff=0.75) if flags else ""  # `--` is common to all: a closer match
    parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pipeline",
        description="Declarative, resumable batch runs against queue-style generative-media APIs.",
    )
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log this tool's debug lines to stderr (before or after COMMAND)")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    # its parsers are _Parsers (one-line errors); the commands' modules take plain ones
    sub = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
               parser.add_subparsers(dest="command", metavar="COMMAND"))
    sub.required = True

    from . import commands  # the job commands, from validate to review
    from .account import cli as account_cli  # the team ledger registers its own verbs
    from .catalog import cli as catalog_cli
    from .sim import cli as sim_cli  # the simulator registers its own options

    commands.register(sub)
    account_cli.register(sub)
    catalog_cli.register(sub)
    sim_cli.register(sub)
    parser.set_defaults(commands=frozenset(sub.choices), verbs=_verbs(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .secrets import ScrubbingFormatter, scrub  # the token never reaches our output

    parser = build_parser()
    args, extras = parser.parse_known_args(hoist_global_options(
        list(sys.argv[1:] if argv is None else argv), parser.get_default("commands"),
        parser.get_default("verbs")))
    if extras:
        unrecognized(parser, args, extras)
    _log_to_stderr(args.verbose, ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("pipeline.canary").setLevel(logging.DEBUG if args.verbose else
                                                  logging.INFO)  # what the canary found
    try:
        return int(args.func(args))
    except PipelineError as exc:
        for line in exc.lines():
            print(scrub(line), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pipeline plan ... | head`: the reader has what it wanted
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        except OSError:
            pass
        return 141
    except Exception as exc:  # a bug: one line by default, the traceback on request
        if args.verbose:
            print(scrub(traceback.format_exc()), end="", file=sys.stderr)
        print(scrub(f"internal error: {type(exc).__name__}: {exc} (a bug; rerun with --verbose "
                    "and report it)"), file=sys.stderr)
        return 3


_VERBOSE = ("-v", "--verbose")
_OWN = ("-h", "--help", "--version")  # options of `pipeline` itself, kept before the command


def _verbs(sub: Any) -> dict[str, frozenset[str]]:
    """The verbs of commands that have them (`account status`): command -> its verbs."""
    out = {}
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                out[name] = frozenset(action.choices)
    return out


def hoist_global_options(argv: list[str], commands: frozenset[str],
                         verbs: dict[str, frozenset[str]] | None = None) -> list[str]:
    """argv with options written before the command moved after it (after its verb, for a
    command that has verbs: where the parser takes them, or refuses them by name), and
    -v/--verbose moved to the front."""
    args = argv[:argv.index("--")] if "--" in argv else argv
    rest = argv[len(args):]
    verbose = [a for a in args if a in _VERBOSE]
    args = [a for a in args if a not in _VERBOSE]
    at = next((i for i, a in enumerate(args) if a in commands), None)
    if at is not None:
        before = args[:at]
        own = [a for a in before if a in _OWN]
        moved = [a for a in before if a not in _OWN]
        command = args[at:at + 1]
        if args[at + 1:at + 2] and args[at + 1] in (verbs or {}).get(args[at], ()):
            command = args[at:at + 2]
        args = own + command + moved + args[at + len(command):]
    return verbose[:1] + args + rest


class _OwnDebug(logging.Filter):
    """Debug and info lines of this tool only; other libraries' warnings and errors still show,
    but not stamina's retry warnings (the progress line says `retrying (n)`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "pipeline" or record.name.startswith("pipeline.")
        if record.name.startswith("stamina"):
            return False
        return ours or record.levelno >= logging.WARNING


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a line is logged."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_handler: logging.Handler | None = None


def _log_to_stderr(verbose: bool, formatter: logging.Formatter) -> None:
    """One stderr handler on the root logger (set again on every call, so that `main` can be
    called many times in one process); `pipeline.*` at DEBUG with --verbose."""
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = _Stderr()
        _handler.addFilter(_OwnDebug())
    _handler.setFormatter(formatter)
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("pipeline").setLevel(logging.DEBUG if verbose else logging.NOTSET)
