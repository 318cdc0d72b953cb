"""`pipeline sim` in a real subprocess: URL on the first line, serves, stops cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from pipeline import wire

MODEL = "bytedance/dreamina-3-0/image-to-video"


def start(*options: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "sim", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_cli_prints_url_first_serves_and_exits_cleanly(sig: signal.Signals, code: int) -> None:
    """The first stdout line is the base URL; the sim answers there; SIGTERM→0, Ctrl-C→130."""
    proc = start("--capacity", "1", "--gen-time", "0.1:0.2", "--token", "tok",
                 "--result-word", "completed", "--output-key", "videos", "--price", "0.07")
    try:
        t0 = time.monotonic()
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:") and time.monotonic() - t0 < 5
        headers = {"Authorization": "Bearer tok"}
        answer = httpx.post(url + wire.SUBMIT_PATH.format(model_id=MODEL), headers=headers,
                            json={"prompt": "x", "image_urls": ["https://x.invalid/a.png"]})
        assert answer.status_code == 200
        assert answer.json()[wire.STATUS_URL].startswith(url)
        stats = httpx.get(url + "/__sim__/stats").json()
        assert stats["submissions_accepted"] == 1
        assert stats["config"]["capacity"] == 1 and stats["config"]["price_usd"] == 0.07
        assert stats["config"]["output_key"] == "videos"
        assert httpx.post(url + wire.SUBMIT_PATH.format(model_id=MODEL), json={},
                          headers={"Authorization": "Bearer other"}).status_code == 401
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == code


@pytest.mark.parametrize("option", [["--drop-rate", "1.5"], ["--gen-time", "3:1"],
                                    ["--capacity", "0"], ["--output-key", "clip"],
                                    ["--error-rate", "lots"], ["--cost-factor", "-1"],
                                    ["--balance", "-5"]])
def test_cli_bad_option_values_exit_2(option: list[str]) -> None:
    """A bad option value is an argparse error naming the option, exit status 2."""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "sim", *option],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and option[0] in proc.stderr and proc.stdout == ""


def test_cli_port_in_use_is_a_one_line_error() -> None:
    """A port already taken gives one `error:` line and exit status 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "pipeline", "sim", "--port", str(port)],
                              capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--port" in proc.stderr


def test_cli_serves_models_folders_and_the_status_word_variants(tmp_path) -> None:
    """`--models DIR` (repeatable) adds its models to the catalog and the submit route, and
    the project's models/ folder of the current directory is served too; the /status word
    options reach the config; a --models folder that does not exist is a one-line error."""
    from testmodels import FIXTURES, IMAGE, VIDEO

    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    (project / "models" / "own" / "m").mkdir(parents=True)
    (project / "models" / "own" / "m" / "input.schema.json").write_text(
        '{"type": "object", "properties": {"prompt": {"type": "string"}}}')
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "sim", "--models", str(FIXTURES),
                             "--status-success-word", "succeeded", "--cancelled-status-word",
                             "canceled", "--failure-status-word", "error"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        headers = {"Authorization": "Bearer tok"}
        listed = httpx.get(url + wire.MODELS_PATH, headers=headers).json()
        assert {e[wire.MODEL_ID] for e in listed[wire.CATALOG_MODELS]} == {
            MODEL, VIDEO, IMAGE, "own/m"}
        config = httpx.get(url + "/__sim__/stats").json()["config"]
        assert (config["status_success_word"], config["cancelled_word"],
                config["status_on_failure"]) == ("succeeded", "canceled", "error")
        assert httpx.post(url + wire.SUBMIT_PATH.format(model_id="own/m"), headers=headers,
                          json={"prompt": "x"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "pipeline", "sim", "--models",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--models" in bad.stderr and "nope" in bad.stderr


def test_cli_balance_reaches_the_wallet() -> None:
    """`pipeline sim --balance USD` serves that wallet at /prod/v2/balance."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "sim", "--balance", "12.4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        answer = httpx.get(url + wire.BALANCE_PATH, headers={"Authorization": "Bearer t"})
        assert answer.json()[wire.BALANCE_USD] == 12.4
        assert httpx.get(url + "/__sim__/stats").json()["config"]["balance"] == 12.4
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
