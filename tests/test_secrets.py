"""The API token never reaches disk or output, whatever the command and however it ends.

Each scenario runs real `pipeline` subprocesses against an in-process simulator with a known,
distinctive token, then greps every file under the test's folder (job outputs, the manifest's
folder, and HOME and TMPDIR, which point inside it), binary files too, and everything the
processes printed, for the token as it is, URL-encoded, JSON-escaped, UTF-16 and inside base64.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from runjobs import REPO, env_for, sweep

from pipeline.client import RunComfyClient
from pipeline.secrets import ScrubbingFormatter, scrub
from pipeline.sim import Simulator

TOKEN = "rcQ7+leak/Canary=Zx9_w4Tq"  # '+', '/' and '=' change under URL- and JSON-encoding


# -- the leak detector ------------------------------------------------------------------------

def _base64_runs(secret: bytes) -> set[bytes]:
    """For each alignment, the base64 characters that do not depend on the bytes around."""
    runs = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            a = encode(b"\x00" * pad + secret + b"\x00\x00")
            b = encode(b"\xff" * pad + secret + b"\xff\xff")
            same = bytes(x if x == y else 0 for x, y in zip(a, b, strict=True))
            runs.add(max(same.split(b"\0"), key=len))
    return runs


def leak_forms(token: str = TOKEN) -> set[bytes]:
    """Byte strings that would betray the token in a file or in output."""
    url = {quote(token, safe=""), quote_plus(token)}
    url |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), u) for u in url}
    texts = {token, json.dumps(token)[1:-1], token.replace("/", "\\/"), *url}
    return ({t.encode() for t in texts} | {token.encode("utf-16-le"), token.encode("utf-16-be")}
            | _base64_runs(token.encode()))


def leaks(root: Path, outputs: dict[str, str]) -> list[str]:
    """Where any form of the token shows: files under `root` (recursively) and `outputs`."""
    found = []
    forms = leak_forms()
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {f!r}" for f in forms if f in data]
    for label, text in outputs.items():
        data = text.encode("utf-8", "surrogateescape")
        found += [f"output of {label}: {f!r}" for f in forms if f in data]
    return found


class Session:
    """Runs `pipeline` commands in a sandbox (cwd, HOME and TMPDIR inside the test folder)."""

    def __init__(self, root: Path, base_url: str, token: str = TOKEN):
        self.root = root
        for sub in ("home", "tmp", "work"):
            (root / sub).mkdir(exist_ok=True)
        self.env = env_for(base_url, token=token, HOME=str(root / "home"),
                           TMPDIR=str(root / "tmp"), XDG_CACHE_HOME=str(root / "home" / ".cache"),
                           PYTHONPATH=str(REPO), LEAK_TOKEN=token)
        self.outputs: dict[str, str] = {}

    def _label(self, args: tuple[str, ...]) -> str:
        label = " ".join(a for a in args if not a.startswith(str(self.root)))
        n = sum(1 for k in self.outputs if k.startswith(label + " #"))
        return f"{label} #{n + 1}"

    def record(self, args: tuple[str, ...], stdout: str, stderr: str) -> None:
        label = self._label(args)
        self.outputs[label + " (stdout)"] = stdout
        self.outputs[label + " (stderr)"] = stderr

    def __call__(self, *args: str, code: int | tuple[int, ...] = 0, inject: str = "",
                 timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [sys.executable, *(("-c", INJECT) if inject else ("-m", "pipeline")), *args]
        env = dict(self.env, LEAK_INJECT=inject)
        proc = subprocess.run(cmd, env=env, cwd=self.root / "work", capture_output=True,
                              text=True, timeout=timeout, check=False)
        self.record(args, proc.stdout, proc.stderr)
        codes = (code,) if isinstance(code, int) else code
        assert proc.returncode in codes, (args, proc.returncode, proc.stderr[-3000:])
        return proc

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=self.env,
                                cwd=self.root / "work", stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def assert_clean(self) -> None:
        assert self.outputs, "no command ran"
        assert leaks(self.root, self.outputs) == []


# A `python -c` program: make one pipeline function raise an exception (with a cause) whose
# message holds the token in several encodings, then run the CLI as `python -m pipeline` would.
INJECT = r"""
import base64, logging, os, sys, urllib.parse
token = os.environ["LEAK_TOKEN"]
where = os.environ["LEAK_INJECT"]

def boom(*args, **kwargs):
    try:
        raise ValueError(f"cause with Bearer {token}")
    except ValueError as cause:
        logging.getLogger("pipeline.bug").error("about to fail with %s", token, exc_info=True)
        raise RuntimeError(f"bug holding {token} | {urllib.parse.quote(token, safe='')} | "
                           f"{base64.b64encode(token.encode()).decode()}") from cause

async def aboom(*args, **kwargs):
    boom()

if where == "plan":
    import pipeline.prepare.plan
    pipeline.prepare.plan.plan_of = boom  # read by pipeline.api when it is imported
elif where == "status":  # inside a runner task, mid-run
    import pipeline.client._core
    pipeline.client._core.RunComfyClient.status = aboom
elif where == "report":
    import pipeline.report
    pipeline.report.write_reports = boom
import pipeline.cli
sys.exit(pipeline.cli.main(sys.argv[1:]))
"""


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """`sim(**config)`: a running simulator, small and fast (config overrides these settings)."""
    return functools.partial(sim_factory, seed=11, capacity=4, gen_time=(0.05, 0.15),
                             retry_after=0.2, slow_delay=0.3, download_outage=0.3)


def job(root: Path, seeds: int = 4) -> tuple[Path, Path]:
    folder = root / "job"
    folder.mkdir()
    return sweep(folder, seeds=seeds), root / "out"


# -- the detector and the scrubber on their own ------------------------------------------------

def test_leak_detector_finds_every_form(tmp_path: Path) -> None:
    """The detector finds the token raw, URL-encoded, JSON-escaped, UTF-16 and in base64 at every
    alignment inside binary files, and nothing in a clean folder."""
    assert leaks(tmp_path, {"clean": "no secret here"}) == []
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(TOKEN, safe=""))
    samples = [TOKEN.encode(), lower_hex.encode(),
               json.dumps({"t": TOKEN}).replace("/", "\\/").encode(), TOKEN.encode("utf-16-le")]
    samples += [base64.b64encode(prefix + TOKEN.encode() + b"!") for prefix in
                (b"", b"B", b"Be", b"Bearer ")]
    for i, sample in enumerate(samples):
        (tmp_path / f"f{i}.bin").write_bytes(b"\x00\x9f junk " + sample + b" \xff")
    assert len({line.split(":")[0] for line in leaks(tmp_path, {})}) == len(samples)
    assert leaks(Path(tmp_path / "nothing"), {"out": f"x{TOKEN}y"})


def test_scrub_removes_every_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrub() masks the environment's token in every form the detector knows, and leaves text
    alone when no token (or a uselessly short one) is set."""
    text = " ".join(f.decode("latin-1") for f in leak_forms() if b"\x00" not in f)
    monkeypatch.delenv("RUNCOMFY_TOKEN", raising=False)
    monkeypatch.delenv("RUNCOMFY_API_TOKEN", raising=False)
    assert scrub(text) == text
    monkeypatch.setenv("RUNCOMFY_TOKEN", TOKEN)
    clean = scrub(text)
    assert "***" in clean and not [f for f in leak_forms() if f in clean.encode("latin-1")]
    monkeypatch.setenv("RUNCOMFY_TOKEN", "ab")
    assert scrub("ab cab") == "ab cab" and scrub("abc", [""]) == "abc"


def test_scrubbing_formatter_masks_message_and_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's log formatter masks the token in the message, its arguments and the traceback."""
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKEN)
    try:
        raise RuntimeError(f"inner {TOKEN}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (TOKEN,),
                                   sys.exc_info())
    text = ScrubbingFormatter("%(message)s").format(record)
    assert "RuntimeError: inner ***" in text and TOKEN not in text


def test_client_masks_a_token_echoed_in_a_stored_error_not_in_the_data() -> None:
    """An API that echoes the token in a /result error gets it masked there (the reason is
    shown and journalled), while the data the runner acts on (output URLs, raw bodies) stays
    as it came: masking it would break the data (issue 20: a short token turned every
    `https` into `ht***s`)."""
    rid = "5b0c7f2e-1d3a-4c55-9a7e-0f6b2d8c9e11"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/result"):
            return httpx.Response(200, json={"status": "failed", "error": f"token {TOKEN} bad",
                                             "output": None})
        return httpx.Response(200, json={"status": "in_queue", "note": TOKEN})

    async def go():
        async with RunComfyClient("https://api.test", TOKEN,
                                  transport=httpx.MockTransport(answer)) as client:
            return await client.result(rid), await client.status(rid)

    result, status = asyncio.run(go())
    assert result.status == "failed" and result.error == "token *** bad"
    assert status.raw["note"] == TOKEN  # data: as sent


@pytest.mark.parametrize("token", ["tp", "http", "https", "ttps:"])
def test_a_token_inside_https_leaves_output_urls_whole(token: str) -> None:
    """A token that is a substring of `https` (RUNCOMFY_API_TOKEN=tp) never mangles the URLs
    of a result: the video URL and every output are the server's own."""
    rid = "5b0c7f2e-1d3a-4c55-9a7e-0f6b2d8c9e11"
    video = "https://cdn.test/out/https-take.mp4"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/result"):
            return httpx.Response(200, json={"status": "succeeded", "cost": 0.25,
                                             "output": {"video": video}})
        return httpx.Response(200, json={"status": "completed",
                                         "result_url": "https://api.test/x"})

    async def go():
        async with RunComfyClient("https://api.test", token,
                                  transport=httpx.MockTransport(answer)) as client:
            return await client.result(rid), await client.status(rid)

    result, status = asyncio.run(go())
    assert result.video_url == video and result.outputs == (video,)
    assert result.raw["output"]["video"] == video
    assert status.raw["result_url"] == "https://api.test/x"


# -- every command, as subprocesses ------------------------------------------------------------

def test_plan_stage_commands_never_show_the_token(tmp_path: Path, sim) -> None:
    """validate, plan and plan --json (plain and --verbose) print no form of the token."""
    server = sim()
    manifest, out = job(tmp_path)
    run = Session(tmp_path, server.base_url)
    run("validate", str(manifest))
    run("--verbose", "validate", str(manifest))
    run("plan", str(manifest), "--out", str(out))
    assert len(json.loads(run("plan", str(manifest), "--json").stdout)["cells"]) == 4
    run("--verbose", "plan", str(manifest), "--json", "--out", str(out))
    run.assert_clean()


def test_successful_run_and_readers_never_show_the_token(tmp_path: Path, sim) -> None:
    """A good run, a --verbose rerun, status, status --json and report leave no form of the
    token on disk or in output."""
    server = sim()
    manifest, out = job(tmp_path)
    run = Session(tmp_path, server.base_url)
    run("run", str(manifest), "--out", str(out), "--no-progress")
    run("--verbose", "run", str(manifest), "--out", str(out), "--no-progress")
    run("status", str(manifest), "--out", str(out))
    assert json.loads(run("status", str(manifest), "--out", str(out), "--json").stdout
                      )["counts"]["done"] == 4
    run("report", str(manifest), "--out", str(out))
    run("--verbose", "report", str(manifest), "--out", str(out))
    assert len(list((out / "videos").glob("*.mp4"))) == 4 and (out / "report.html").exists()
    run.assert_clean()


def test_run_with_faults_never_shows_the_token(tmp_path: Path, sim) -> None:
    """A run hit by failed generations, 5xx, 429, dropped connections and broken downloads,
    with --verbose logs and a --retry-failed rerun, leaves no form of the token anywhere."""
    server = sim(capacity=6, fail_rate=0.3, error_rate=0.15, rate_limit_rate=0.1,
                 drop_rate=0.1, download_fault_rate=0.4)
    manifest, out = job(tmp_path, seeds=10)
    run = Session(tmp_path, server.base_url)
    verbose = run("--verbose", "run", str(manifest), "--out", str(out), "--no-progress",
                  code=(0, 1))
    run("run", str(manifest), "--out", str(out), "--no-progress", "--retry-failed", code=(0, 1))
    run("status", str(manifest), "--out", str(out), "--json")
    run("report", str(manifest), "--out", str(out))
    faults = server.stats()["faults"]
    assert sum(faults.values()) >= 5, faults
    assert "DEBUG" in verbose.stderr  # the --verbose logs were really on
    run.assert_clean()


def test_interrupted_run_and_cancel_never_show_the_token(tmp_path: Path, sim) -> None:
    """A --verbose run stopped by SIGINT, then `cancel` of its live requests and `status`,
    leave no form of the token anywhere."""
    server = sim(capacity=1, gen_time=(20.0, 20.0))
    manifest, out = job(tmp_path)
    run = Session(tmp_path, server.base_url)
    args = ("--verbose", "run", str(manifest), "--out", str(out), "--no-progress",
            "--no-canary")
    proc = run.start(*args)
    try:
        deadline = time.monotonic() + 30
        while server.stats()["submissions_accepted"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # only on a failure above: never leave the run behind
            proc.kill()
            proc.communicate()
    run.record(args, stdout, stderr)
    assert proc.returncode == 130, stderr[-2000:]
    cancel = run("cancel", str(manifest), "--out", str(out))
    assert "asked to cancel 4 live request(s)" in cancel.stdout
    run("--verbose", "cancel", str(manifest), "--out", str(out))
    run("status", str(manifest), "--out", str(out))
    run.assert_clean()


def test_refused_token_never_shows_the_token(tmp_path: Path, sim) -> None:
    """When the API refuses the token, the one-line error, the --verbose logs and the state say
    so without showing any form of it."""
    server = sim(token="the-only-good-token")
    manifest, out = job(tmp_path)
    run = Session(tmp_path, server.base_url)
    first = run("run", str(manifest), "--out", str(out), "--no-progress", code=2)
    run("--verbose", "run", str(manifest), "--out", str(out), "--no-progress", code=2)
    run("status", str(manifest), "--out", str(out), "--json")
    assert "RUNCOMFY_API_TOKEN" in first.stderr and server.stats()["submissions_accepted"] == 0
    run.assert_clean()


@pytest.mark.parametrize("where,command,code", [
    ("plan", "plan", 3), ("status", "run", 3), ("report", "report", 3), ("report", "run", 0),
])
@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_a_bug_carrying_the_token_is_masked(tmp_path: Path, sim, where: str, command: str,
                                            code: int, verbose: bool) -> None:
    """An internal error whose message, cause and log line hold the token (in several
    encodings) is reported with the token masked, on the one-line and the --verbose traceback
    paths alike, and leaves it nowhere on disk."""
    server = sim()
    manifest, out = job(tmp_path)
    run = Session(tmp_path, server.base_url)
    if command == "report":
        run("run", str(manifest), "--out", str(out), "--no-progress")
    extra = ("--no-progress",) if command == "run" else ()
    proc = run(*(("--verbose",) if verbose else ()), command, str(manifest), "--out", str(out),
               *extra, code=code, inject=where)
    assert "***" in proc.stderr, proc.stderr[-2000:]  # the bug's text was there, masked
    if code == 3:
        assert "internal error: RuntimeError: bug holding *** | *** | ***" in proc.stderr
        traceback = re.search(r"^RuntimeError: bug holding \*\*\* \| \*\*\* \| \*\*\*",
                              proc.stderr, re.MULTILINE)
        assert bool(traceback) == verbose  # the bug's own traceback only with --verbose
    run.assert_clean()
