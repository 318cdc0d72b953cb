"""Fixtures shared by every test folder: simulators on ephemeral ports, and fast retries.

- `sim_factory`: `start(**config)` starts `Simulator(SimConfig(**config))` on 127.0.0.1 with an
  ephemeral port; every simulator a test started is stopped when the test ends. A file with its
  own defaults binds them with `functools.partial(sim_factory, **DEFAULTS)` (keywords given at
  the call still override them).
- `sim_client`: the same, plus an `httpx.Client` on the simulator that sends a bearer token.
- `api_env`: a simulator the RunComfy backend is pointed at through `RUNCOMFY_BASE_URL` and
  `RUNCOMFY_API_TOKEN`, for tests that run jobs in-process.
- `unavailable(reason)`: a service a test needs is missing (Chromium, ...): skipped on a
  developer's machine, saying why, and failed in CI (`CI=true`), where `.ci/run` must have
  provided it.
- `postgres`: a throwaway PostgreSQL cluster of the session's own (tests/pgcluster.py), started
  on first use; `ledger_url`: a fresh, empty database on it for one test. Where PostgreSQL's
  server binaries are missing the test is `unavailable` (skipped, or failed in CI).
- `--fuzz`: the manifest fuzz tests run 1,000 generated examples each instead of 100 (as
  build's `--run-integration`: the thorough profile on demand, the quick one by default).
- `fast_retries`: `with fast_retries(attempts=N):` runs in stamina's testing mode (no backoff
  waits, at most N attempts per retried call). Mark a test or a module
  `@pytest.mark.fast_retries(attempts=N)` to run it so; stamina's mode is global, so every test
  runs inside a `stamina.set_testing(...)` context (the marked mode, else testing off) that
  restores the previous mode when the test ends.

The folder of this file is on `sys.path` (pytest's default "prepend" import mode), so tests in
the subfolders import the helper modules beside it: `from runjobs import ...`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stamina
from runjobs import TOKEN

if TYPE_CHECKING:
    from pipeline.sim import Simulator

# What `api_env` adds under the test's own settings: seeded, and the simulator's Retry-After,
# slow answers and download outages shrunk so that runs with faults stay short.
RUN_SIM = {"seed": 7, "retry_after": 0.2, "slow_delay": 0.5, "download_outage": 0.5}
SIM_AUTH = {"Authorization": "Bearer test-token"}  # any non-empty token passes by default


IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip a test whose service is missing, or fail it in CI where it must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service fails its tests)", pytrace=False)
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz", action="store_true",
                     help="run the manifest fuzz tests with 1,000 examples each (default 100)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fuzz"):  # read by tests/prepare/test_fuzz_manifest.py at import
        os.environ["PIPELINE_FUZZ_EXAMPLES"] = "1000"
    config.addinivalue_line(
        "markers", "fast_retries(attempts): run the test in stamina's testing mode (no backoff "
        "waits, at most `attempts` attempts per retried call); see tests/conftest.py")


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Simulator]]:
    """`start(**config)`: a simulator on an ephemeral loopback port; all stop when the test ends."""
    from pipeline.sim import SimConfig, Simulator  # here, so that only the tests using it need it

    with contextlib.ExitStack() as started:  # stops every one, even if one fails to stop
        def start(**config: Any) -> Simulator:
            sim = Simulator(SimConfig(**config), host="127.0.0.1", port=0).start()
            started.callback(sim.stop)
            return sim

        yield start


@pytest.fixture
def sim_client(sim_factory: Callable[..., Simulator]
               ) -> Iterator[Callable[..., tuple[Simulator, httpx.Client]]]:
    """`start(**config)`: a running simulator and an httpx.Client on it with a bearer token."""
    with contextlib.ExitStack() as clients:
        def start(**config: Any) -> tuple[Simulator, httpx.Client]:
            sim = sim_factory(**config)
            client = httpx.Client(base_url=sim.base_url, headers=SIM_AUTH, timeout=10)
            return sim, clients.enter_context(client)

        yield start


@pytest.fixture
def api_env(sim_factory: Callable[..., Simulator],
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., Simulator]:
    """`start(**config)`: a simulator (RUN_SIM defaults) that the RUNCOMFY_* variables point at."""
    def start(**config: Any) -> Simulator:
        sim = sim_factory(**{**RUN_SIM, **config})
        monkeypatch.setenv("RUNCOMFY_BASE_URL", sim.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKEN)
        monkeypatch.delenv("RUNCOMFY_ACCOUNT_URL", raising=False)  # the wallet: the sim's too
        return sim

    return start


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """The session's own PostgreSQL cluster (a tests/pgcluster.Cluster), running."""
    import pgcluster

    try:
        cluster = pgcluster.Cluster()
        cluster.start()
    except pgcluster.Unavailable as exc:
        unavailable(f"PostgreSQL is needed for the team-ledger tests: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def ledger_url(postgres: Any, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's cluster, for one test."""
    import re

    if not postgres.running():
        postgres.start()
    return postgres.fresh_database("t_" + re.sub(r"\W", "_", request.node.name)[:50].lower())


@pytest.fixture(scope="session")
def fast_retries() -> Callable[..., contextlib.AbstractContextManager]:
    """`with fast_retries(attempts=N):` stamina's testing mode, the previous mode restored after."""
    def switch(attempts: int) -> contextlib.AbstractContextManager:
        # cap: a call configured with fewer attempts keeps its own number
        return stamina.set_testing(True, attempts=attempts, cap=True)

    return switch


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees output as a pipe does, unwrapped: pytest-xdist's workers set COLUMNS=80
    (a test that is about wrapping sets it itself)."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(autouse=True)
def _stamina_mode(request: pytest.FixtureRequest,
                  fast_retries: Callable[..., contextlib.AbstractContextManager]) -> Iterator[None]:
    """Each test in the retry mode its `fast_retries` mark asks for (else real), reset after it."""
    mark = request.node.get_closest_marker("fast_retries")
    with fast_retries(*mark.args, **mark.kwargs) if mark else stamina.set_testing(False):
        yield
