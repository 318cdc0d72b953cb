"""Every error a user can cause or meet, in one tree.

    PipelineError                  base: the CLI prints it on one line and exits non-zero
    ├── UsageError                 the command line itself is wrong
    ├── ManifestError              located problems in a manifest (file:line:col: message)
    ├── ModelNotFound              no bundled input schema for a model id
    ├── InputFileError             a file the manifest names is missing, unreadable or out of bounds
    ├── ClientError                talking to the API went wrong (see pipeline.client)
    │   ├── MissingToken           no API token in the environment
    │   ├── AuthError              the API refused the token (401/403, or 400 with 400004)
    │   ├── ApiError               any other error answer (status, error_code, message)
    │   │   ├── NotFound           unknown request id or model (404)
    │   │   └── RateLimited        429 after retries ran out
    │   ├── TransportError         connection failed / timed out after retries ran out
    │   │   └── ApiUnreachable     the API's host cannot be reached at all (refused, DNS, TLS)
    │   ├── SubmitError            a submit that failed, with how: NOT_ACCEPTED or OUTCOME_UNKNOWN
    │   ├── LocalImageError        a local image cannot be sent (also an InputFileError)
    │   └── DownloadError          an output file could not be fetched or failed its checks
    ├── StateError                 a job's state file cannot be used as it is
    │   ├── FormatError            a stored file is in a format this version does not read
    │   └── JobLocked              another live process runs this job
    ├── BudgetError                a run would cross its budget, or its price is unknown under one
    └── LedgerError                the team ledger (PostgreSQL) is misconfigured or not set up
        └── LedgerUnavailable      the team ledger cannot be reached right now

AuthError and ApiError share `.status_code`, `.error_code`, `.message` and `.retry_after`
(from a private base); SubmitError carries `.kind` and the underlying ClientError as `.error`.
Misuse of the Python API by a programmer is a plain RuntimeError/TypeError, never one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PipelineError(Exception):
    """Base class of every user-facing error; `exit_code` is what the CLI returns."""

    exit_code = 2

    def lines(self) -> list[str]:
        """The message as the CLI prints it, one problem per line."""
        return [f"error: {self}"]


class UsageError(PipelineError):
    """The command line is wrong (unknown option value, bad KEY=VALUE, ...)."""


@dataclass(frozen=True)
class Location:
    """Where a value came from: a file and a 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col or 1}"
        return self.file


@dataclass
class Problem:
    """One thing wrong, at one place; `cells` counts the expanded cells it affects."""

    where: Location
    message: str
    cells: int = 0
    example: str = ""  # one affected cell, as "cell <id> {values}"
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        label = self.severity + ": " if self.severity != "error" else ""
        text = f"{self.where}: {label}{self.message}"
        if self.cells == 1 and self.example:
            text += f" ({self.example})"
        elif self.cells > 1:
            text += f" (affects {self.cells} cells, e.g. {self.example})"
        return text


class ManifestError(PipelineError):
    """A manifest (or the requests it expands to) has problems; all of them are carried."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if p.severity == "error"] or problems
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ModelNotFound(PipelineError):
    """The manifest names a model for which no input schema is bundled."""


class InputFileError(PipelineError):
    """A file named by a manifest is missing, unreadable, or outside the allowed folders."""


class ClientError(PipelineError):
    """Talking to the API failed; subclasses say how."""

    exit_code = 1


class MissingToken(ClientError):
    """No API token in the environment (RUNCOMFY_API_TOKEN or RUNCOMFY_TOKEN)."""

    exit_code = 2  # the user's to fix


class _HttpAnswerError(ClientError):
    """Shared shape of an error answer: HTTP status, the API's error_code and its message."""

    # The status the answer means when its error_code says more than its HTTP status; set by
    # the client on the answers it reads (unset: read with getattr and a default).
    effective_status: int

    def __init__(self, message: str, *, status_code: int | None = None,
                 error_code: int | str | None = None, operation: str = "",
                 retry_after: float | None = None):
        self.status_code = status_code
        self.error_code = error_code
        self.message = message
        self.operation = operation
        self.retry_after = retry_after
        parts = [f"{operation}: " if operation else ""]
        if status_code is not None:
            parts.append(f"HTTP {status_code}")
        if error_code is not None:
            parts.append(f" (error_code {error_code})")
        parts.append(f": {message}" if status_code is not None or error_code is not None
                     else message)
        super().__init__("".join(parts))


class AuthError(_HttpAnswerError):
    """The API refused the token: 401/403, or 400 with error_code 400004."""

    exit_code = 2  # the user's to fix

    def lines(self) -> list[str]:
        return [f"error: {self}",
                "hint: check RUNCOMFY_API_TOKEN, or run offline with "
                "`pipeline run MANIFEST --backend sim`"]


class ApiError(_HttpAnswerError):
    """Any other error answer from the API (status_code, error_code, message)."""


class NotFound(ApiError):
    """The API does not know this request id or model (404)."""


class RateLimited(ApiError):
    """The API kept answering 429 until the retries ran out; `retry_after` is its last hint."""


class TransportError(ClientError):
    """The connection failed or timed out, and the retries (if any) ran out."""


class ApiUnreachable(TransportError):
    """The API's host could not be reached (connection refused, name not resolved, TLS
    failure, no answer) for longer than the client waits; the message says what to check."""

    exit_code = 2  # the user's to fix: the address, the network, a proxy


class SubmitError(ClientError):
    """A submit failed; `kind` says whether the API surely did not take it or might have."""

    def __init__(self, kind: str, message: str, *, status_code: int | None = None,
                 error_code: int | str | None = None, error: ClientError | None = None,
                 retry_after: float | None = None, permanent: bool = False):
        self.kind = kind
        self.permanent = permanent  # not accepted, and sending the same body again cannot help
        self.status_code = status_code
        self.error_code = error_code
        self.message = message
        self.error = error
        self.retry_after = retry_after
        super().__init__(f"submit {kind}: {message}")


class LocalImageError(ClientError, InputFileError):
    """A local image cannot be sent: unreadable, not JPEG/PNG, too large, or data URIs are off."""

    exit_code = InputFileError.exit_code  # the user's input is at fault, not the API


class DownloadError(ClientError):
    """An output file could not be fetched, or failed its size, type or length checks."""

    def __init__(self, message: str, *, url: str = "", status_code: int | None = None,
                 transient: bool = False, retry_after: float | None = None):
        self.url = url
        self.status_code = status_code
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(f"download {url}: {message}" if url else f"download: {message}")


class StateError(PipelineError):
    """A job's state on disk cannot be used as it is (corrupt, other schema, ...)."""


class FormatError(StateError):
    """A stored file (journal, plan.json, capacity.json, ...) is in a format this version of
    pipeline does not read: the message names the file and what to do (docs/formats.md)."""


class JobLocked(StateError):
    """Another live process holds this job's lock."""


class BudgetError(PipelineError):
    """A run would cross its budget, or a price is unknown under a budget."""


class LedgerError(PipelineError):
    """The team ledger named by PIPELINE_LEDGER / --ledger cannot be used as it is (a bad URL,
    not initialised, a newer schema)."""


class LedgerUnavailable(LedgerError):
    """The team ledger's database cannot be reached (down, restarting, refused)."""


@dataclass
class ProblemList:
    """Collects problems, merging repeats of the same message at the same place."""

    items: dict[tuple[Location, str], Problem] = field(default_factory=dict)

    def add(self, where: Location, message: str, *, example: str = "", cell: bool = False,
            severity: str = "error") -> None:
        key = (where, message)
        problem = self.items.get(key)
        if problem is None:
            problem = self.items[key] = Problem(where, message, example=example, severity=severity)
        if cell:
            problem.cells += 1

    def errors(self) -> list[Problem]:
        return [p for p in self.items.values() if p.severity == "error"]

    def warnings(self) -> list[Problem]:
        return [p for p in self.items.values() if p.severity != "error"]

    def __bool__(self) -> bool:
        return bool(self.errors())

    def raise_if_any(self) -> None:
        if self:
            raise ManifestError(self.errors())
