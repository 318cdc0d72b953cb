"""The run stage's entry point: one run of one job, from its plan to its last journal event.

`run_locked(plan, options, folder)` (the caller holds the job's lock: pipeline.api) opens
the run in steps (`_open`, one a line): it replays the journal, checks the schema, starts the
client (or the in-process simulator), resolves the price (the catalog first, see
pipeline.run.prices) and checks the budget can be kept, decides the run's canary (the cells it
proves before the rest, pipeline.run.canary), writes the plan snapshot, journals the run's
start, opens the team ledger and builds Control; then it hands over to the Runner and closes
what it opened. The reports are the API's to write (pipeline.api). Every step is journalled
(pipeline.job.journal): the intent to submit is durable before the POST and the request id
right after it, so a rerun polls what was submitted instead of paying for it again, and holds
as `unknown` what may or may not have been accepted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .. import text
from ..account import LEDGER_ENV_VAR
from ..client import RunComfyClient
from ..errors import BudgetError, StateError
from ..job import journal as ev
from ..job.folder import JobFolder, JobLock
from ..job.forecast import forecast
from ..job.found_capacity import keep, kept, planning_concurrency, service
from ..job.journal import JobState, read_state
from ..job.journal_writer import JournalWriter
from ..job.next_run import canary_needs, resume_for
from ..job.plan_json import write_snapshot
from ..job.price import SIM_ORIGIN, Prices
from ..job.select import select_cells
from ..media.strips import Previews
from ..models.catalogue import project_models
from ..prepare.manifest import Manifest
from ..prepare.plan import Plan
from .auto import AutoConcurrency
from .context import RunContext, RunOptions, RunSummary
from .control import Control
from .poll import PollPlanner
from .prices import fetch_prices
from .runner import Runner
from .stopping import FailureLimits, RefusalBreaker
from .team import TeamSlots, open_team
from .wallet import wallet_check
from .watch import Watch

if TYPE_CHECKING:
    from ..sim import Simulator

__all__ = ["RunOptions", "RunSummary", "run_job", "run_locked"]

log = logging.getLogger("pipeline.run")

# HTTP calls in flight at once (requests live on the server are not calls: a live request costs
# nothing between polls). httpx's pool scans every connection per request, so a small pool is
# cheaper per call; env PIPELINE_IN_FLIGHT overrides it for experiments.
IN_FLIGHT = int(os.environ.get("PIPELINE_IN_FLIGHT", "16"))


def run_job(plan: Plan, options: RunOptions = RunOptions()) -> RunSummary:
    """Execute a plan (blocking), taking its job's lock; no reports (pipeline.api.run_plan
    writes them too)."""
    folder = JobFolder.of(plan.manifest, options.out)
    with JobLock(folder):
        folder.check_owner(plan.manifest.path)
        return run_locked(plan, options, folder)


def run_locked(plan: Plan, options: RunOptions, folder: JobFolder) -> RunSummary:
    """Execute a plan (blocking) in a job folder whose lock the caller holds."""
    try:
        return asyncio.run(_run(plan, options, folder))
    except OSError as exc:  # the job folder cannot be written (full, read-only, ...)
        raise StateError(f"cannot write in {folder}: {exc.strerror or exc}; free some space "
                         "(or fix the folder) and run again to resume") from None


async def _run(plan: Plan, options: RunOptions, folder: JobFolder) -> RunSummary:
    """One run: open its context step by step, let the Runner drive it, close what was opened."""
    opened = _Opened()
    try:
        run = await _open(plan, options, folder, opened)
        return await Runner(run, options).run()
    finally:
        await opened.close()


async def _open(plan: Plan, options: RunOptions, folder: JobFolder,
                opened: _Opened) -> RunContext:
    """The steps that set a run up, in order (what must be closed goes into `opened`)."""
    m = plan.manifest
    backend = options.backend or m.backend
    cells = select_cells(plan.cells, options.only)
    state = read_state(folder, lean=True)  # the journal, replayed
    _check_schema(state, plan, options)
    auto = options.auto or (m.run.auto and options.concurrency is None)
    at = service(backend)  # what it learns of the service and starts from is kept per service
    concurrency = options.concurrency or planning_concurrency(m.run, folder, at)
    client = opened.connect(m, options, backend, concurrency)
    opened.previews = Previews(folder.path)
    price = await _prices(client, m, folder, options, simulated=opened.sim is not None)
    resume = resume_for(state, retry_failed=options.retry_failed,
                        resubmit_unknown=options.resubmit_unknown,
                        new_simulator=opened.sim is not None)
    needs = {} if options.no_canary else canary_needs(
        state, m.run.canary, backend, client.base_url, {c.id: c.model for c in cells})
    canary = sum(needs.values())
    outlook = forecast(plan, price, folder, concurrency=concurrency, state=state, backend=backend,
                       simulated_s=sum(opened.sim.config.gen_span) / 2 if opened.sim else None,
                       resume=resume, canary=canary, at=at)
    write_snapshot(folder, outlook)
    control = _control(m, folder, at, concurrency, canary=canary, auto=auto)
    uid = state.uid or uuid.uuid4().hex  # the job's, from its first run on
    # (before the run is journalled: a ledger that cannot be used is the user's to fix first)
    opened.team = await _open_team(options, backend, state, m.name, client.base_url, uid,
                                   control)
    opened.journal = JournalWriter(folder, state)
    opened.previews.on_qa = _journalled(opened.journal)
    start = await _started(opened.journal, plan, outlook.price, backend=backend,
                           base_url=client.base_url, concurrency=concurrency,
                           cells=len(cells), canary=canary, auto=auto, uid=uid)
    outlook.tally.live_since = start["t"]
    run = RunContext(
        plan=plan, cells=cells, folder=folder, client=client, journal=opened.journal,
        tally=outlook.tally, control=control,
        planner=PollPlanner(initial=m.run.polling.initial,
                            max_interval=m.run.polling.max, lazy=control.auto is not None),
        price=outlook.price,  # as the job's canary, if any, corrected it
        backend=backend, max_attempts=m.run.max_attempts,
        timeout=m.run.polling.timeout,
        watch=Watch(active=canary > 0), team=opened.team, canary_needs=needs,
        previews=opened.previews, retries=options.retries)
    # the balance is read before the first submit and as the run spends (pipeline.run.wallet)
    run.wallet = wallet_check(client, outlook.tally, control.stopping, cells,
                              ignore=options.ignore_balance)
    return run


@dataclass
class _Opened:
    """What a run opens and must close, whatever happens: the simulator, the client, the
    frame-strip worker, the journal and the team ledger."""

    sim: Simulator | None = None  # the in-process simulator, for backend `sim`
    client: RunComfyClient | None = None
    previews: Previews | None = None
    journal: JournalWriter | None = None
    team: TeamSlots | None = None

    def connect(self, m: Manifest, options: RunOptions, backend: str,
                concurrency: int) -> RunComfyClient:
        """The API's client: on the in-process simulator for backend `sim`, else from the
        environment (RUNCOMFY_API_TOKEN, ...)."""
        data_uris = m.run.local_images == "data_uri"
        if backend != "sim":
            self.client = RunComfyClient.from_env(max_in_flight=IN_FLIGHT, data_uris=data_uris)
            return self.client
        from ..sim import SimConfig, Simulator
        from ..sim.config import BUILTIN_GEN_TIME

        config = options.sim or SimConfig(capacity=concurrency, gen_time=BUILTIN_GEN_TIME)
        if m.root is not None:  # it serves the project's models as well as the bundled
            config = dataclasses.replace(config, models_dirs=(
                *config.models_dirs, str(project_models(m.root))))
        self.sim = Simulator(config).start()
        self.client = RunComfyClient(self.sim.base_url, "sim-local-token",
                                     max_in_flight=IN_FLIGHT, data_uris=data_uris)
        return self.client

    async def close(self) -> None:
        if self.previews is not None:  # the report shows them: finish them
            await asyncio.to_thread(self.previews.close)
        if self.team is not None:  # a last flush of what the ledger has not yet been told
            await self.team.close()
        if self.journal is not None:
            self.journal.close()
        if self.client is not None:
            await self.client.aclose()
        if self.sim is not None:
            self.sim.stop()


def _journalled(journal: JournalWriter) -> Callable[[str, str, dict], None]:
    """What the previews' worker thread calls with a clip's triage: its `qa` event, handed to
    the run's event loop (the journal is written from there alone)."""
    loop = asyncio.get_running_loop()

    def write(event: dict) -> None:
        try:
            journal.write(event)
        except StateError as exc:  # the journal failed: the run is stopping already
            log.info("the triage of %s is not journalled: %s", event["path"], exc)

    def triaged(cell_id: str, path: str, result: dict) -> None:
        loop.call_soon_threadsafe(write, ev.qa_checked(cell_id, path, result))
    return triaged


async def _prices(client: RunComfyClient, m: Manifest, folder: JobFolder, options: RunOptions,
                  *, simulated: bool) -> Prices:
    """The price of each model (the catalog first: pipeline.run.prices), checked against a
    budget that needs it."""
    price = await fetch_prices(client, m, folder,
                               SIM_ORIGIN if simulated else urlparse(client.base_url).netloc)
    _check_budget_possible(m, price, options)
    for warning in price.warnings:
        log.warning("%s", warning)
    return price


async def _started(journal: JournalWriter, plan: Plan, price: Prices, *, backend: str,
                   base_url: str, concurrency: int, cells: int, canary: int, auto: bool,
                   uid: str) -> dict:
    """The run's first journal event, made durable: what it runs, where, at which price."""
    m = plan.manifest
    many = m.sweep.many
    start = journal.write(ev.run_started(
        job=m.name, model=m.sweep.label,
        manifest=str(m.path.resolve()), manifest_sha256=m.sha256,
        schema_sha256=None if many else m.model.schema_sha256,
        backend=backend, base_url=base_url, concurrency=concurrency,
        max_attempts=m.run.max_attempts, cells=cells, price=price.sheet,
        price_source=price.source, budget=m.run.budget, canary=canary,
        models={k: {"schema_sha256": x.schema_sha256, "price": price.of(k).sheet}
                for k, x in m.sweep.models.items()} if many else None,
        uid=uid,
        auto={"queue_ahead": m.run.queue_ahead} if auto else None))
    await journal.durable()
    return start


def _control(m: Manifest, folder: JobFolder, at: str, concurrency: int, *, canary: int,
             auto: bool) -> Control:
    """The run's slots and stop policies, from the manifest's `run` block."""
    control = Control(concurrency, FailureLimits(m.run.fail_fast, m.run.max_failures),
                      canary=canary,
                      refusals=RefusalBreaker(m.run.stop_after_refusals),
                      auto=_auto(auto, folder, m.run.queue_ahead, at))
    if control.auto is not None:  # what it finds is kept for the next run
        control.requests.on_capacity = lambda found: keep(folder, at, found, m.run.queue_ahead)
    return control


def _auto(on: bool, folder: JobFolder, queue_ahead: int, at: str) -> AutoConcurrency | None:
    """`concurrency: auto`, starting from what the last run found on this service, if any."""
    if not on:
        return None
    found = kept(folder, at)
    return AutoConcurrency.resume(found["capacity"] if found else None, queue_ahead)


async def _open_team(options: RunOptions, backend: str, state: JobState, job: str,
                     base_url: str, uid: str, control: Control) -> TeamSlots | None:
    """The team ledger this run shares, reached and brought in line with the journal; None
    without one. A ledger that cannot be used now (not reached: a wrong host, port, database,
    user or password; not set up) stops the run here, as the user's to fix (LedgerError, exit
    2); one that goes away later only delays submits."""
    url = options.ledger or os.environ.get(LEDGER_ENV_VAR, "").strip() or None
    if url is None:
        return None
    if backend == "sim":  # the built-in simulator is this run's own server, not the account
        log.warning("the team ledger is not used with the built-in simulator (backend sim)")
        return None
    team = open_team(url, state, job=job, job_uid=uid, base_url=base_url,
                     down=options.retries.ledger_down, stopping=control.stopping)
    if team is None:  # (never: a ledger is named)
        return None
    try:
        await team.start()
    except BaseException:
        await team.ledger.close()
        raise
    return team


def _check_budget_possible(m: Manifest, price: Prices, options: RunOptions) -> None:
    unknown = price.unknown()
    if m.run.budget is None or not unknown:
        return
    which = ", ".join(unknown)
    if options.allow_unknown_price or m.run.allow_unknown_price:
        log.warning("the price of %s is unknown: the budget cannot be enforced", which)
        return
    raise BudgetError(f"the price of {which} is unknown (the catalog did not say), so "
                      f"the budget of {text.money(m.run.budget)} cannot be enforced; state a "
                      "price in run.price, or pass --allow-unknown-price")


def _check_schema(state: JobState, plan: Plan, options: RunOptions) -> None:
    """Refuse to mix results of two versions of a model's schema (unless told to)."""
    if not state.cells or options.allow_schema_change:
        return
    header = state.header
    recorded = {k: v.get("schema_sha256") for k, v in (header.get("models") or {}).items()
                if isinstance(v, dict)}
    if not recorded and header.get("schema_sha256"):
        recorded = {header.get("model"): header["schema_sha256"]}
    for model_id, model in plan.manifest.sweep.models.items():
        old = recorded.get(model_id)
        if old and old != model.schema_sha256:
            raise StateError(f"the input schema of {model_id} ({model.source}) changed since "
                             "this job's state was written; results would mix two schemas. "
                             "Pass --allow-schema-change to go on, or use a new output folder "
                             "(--out)")
