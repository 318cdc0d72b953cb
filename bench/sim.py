"""How many API calls per second the simulator answers with 2,000 requests in flight.

    python bench/sim.py [--requests 2000] [--concurrency 64] [--rounds 3] [--inproc]

Starts `pipeline sim` in a subprocess on loopback (or in this process with --inproc, where it
shares the GIL with the client), submits N requests from one httpx.AsyncClient with at most
`concurrency` HTTP calls at once (an asyncio.Semaphore in front of the pool), then polls the
status of all N for a few rounds while they are queued or running. Prints calls per second
for the submit phase, the status phase and overall, with latency percentiles. Bounded: every
phase stops at --max-seconds, and the simulator is stopped at the end.

It also prints the CPU time the simulator process spent per call next to the client's: on a
loopback run the client (httpx's async pool) spends several times more per call than the
simulator, so the simulator is not what limits a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from pipeline import wire

MODEL = "bytedance/dreamina-3-0/image-to-video"
AUTH = {"Authorization": "Bearer bench"}


async def phase(client: httpx.AsyncClient, sem: asyncio.Semaphore,
                calls: list[tuple[str, str, Any]],
                deadline: float) -> tuple[int, float, list[float], list[Any]]:
    """Run the calls (method, path, json) concurrently; returns count, seconds, latencies,
    bodies."""
    latencies: list[float] = []

    async def one(method: str, path: str, body: Any) -> Any:
        if time.monotonic() > deadline:
            return None
        async with sem:
            t0 = time.perf_counter()
            answer = await client.request(method, path, json=body)
            latencies.append(time.perf_counter() - t0)
            answer.raise_for_status()
            return answer.json()

    t0 = time.perf_counter()
    bodies = await asyncio.gather(*(one(*call) for call in calls))
    return len(latencies), time.perf_counter() - t0, latencies, bodies


def report(name: str, n: int, seconds: float, latencies: list[float]) -> None:
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(f"{name:>8}: {n:6d} calls in {seconds:6.2f} s = {n / seconds:7.0f} requests/s "
          f"(latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms)")


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (Linux), else None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def bench(base_url: str, args: argparse.Namespace, sim_pid: int | None = None) -> None:
    sim_cpu0, client_cpu0 = cpu_seconds(sim_pid), time.process_time()
    sem = asyncio.Semaphore(args.concurrency)
    limits = httpx.Limits(max_connections=args.concurrency,
                          max_keepalive_connections=args.concurrency)
    deadline = time.monotonic() + args.max_seconds
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, limits=limits,
                                 timeout=30) as client:
        submits = [("POST", wire.SUBMIT_PATH.format(model_id=MODEL),
                    {"prompt": f"bench {i}", "image_urls": ["https://example.invalid/in.jpg"]})
                   for i in range(args.requests)]
        n_sub, t_sub, lat_sub, bodies = await phase(client, sem, submits, deadline)
        ids = [b[wire.REQUEST_ID] for b in bodies if b]
        polls = [("GET", wire.STATUS_PATH.format(request_id=rid), None)
                 for _ in range(args.rounds) for rid in ids]
        n_st, t_st, lat_st, answers = await phase(client, sem, polls, deadline)
        stats = (await client.get("/__sim__/stats")).json()
    sim_cpu1, client_cpu = cpu_seconds(sim_pid), time.process_time() - client_cpu0
    queued = sum(1 for a in answers if a and a["status"] == wire.IN_QUEUE)
    print(f"simulator at {base_url}: {len(ids)} requests in flight "
          f"(states now: {stats['requests_by_state']}); {queued} of {n_st} polls saw in_queue")
    report("submit", n_sub, t_sub, lat_sub)
    report("status", n_st, t_st, lat_st)
    report("overall", n_sub + n_st, t_sub + t_st, lat_sub + lat_st)
    calls = n_sub + n_st
    if sim_cpu0 is not None and sim_cpu1 is not None and calls:
        per_call = (sim_cpu1 - sim_cpu0) / calls
        print(f"simulator CPU: {per_call * 1000:.2f} ms per call (~{1 / max(per_call, 1e-9):.0f} "
              f"calls/s per core); client CPU: {client_cpu / calls * 1000:.2f} ms per call")


def startup(rounds: int = 5) -> None:
    """What the unit tests used to assert with timers: an in-process simulator starts and
    stops quickly, and one 241-frame preview encodes well under a second. Each against a
    baseline of the same run: a bare uvicorn server on the same port range, and decoding the
    clip just encoded."""
    import threading

    import uvicorn
    from starlette.applications import Starlette

    from pipeline.sim import SimConfig, Simulator
    from pipeline.sim.video import encode_mp4, placeholder_picture

    def bare() -> float:
        server = uvicorn.Server(uvicorn.Config(Starlette(), host="127.0.0.1", port=0,
                                               log_level="error"))
        t0 = time.perf_counter()
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.001)
        server.should_exit = True
        thread.join()
        return time.perf_counter() - t0

    def ours() -> float:
        t0 = time.perf_counter()
        Simulator(SimConfig(gen_time=(0.0, 0.0))).start().stop()
        return time.perf_counter() - t0

    started = statistics.median(ours() for _ in range(rounds))
    baseline = statistics.median(bare() for _ in range(rounds))
    print(f"simulator start+stop: {started * 1000:.0f} ms, a bare uvicorn server "
          f"{baseline * 1000:.0f} ms ({started / baseline:.1f}x)")
    card = placeholder_picture("ab" * 32)
    t0 = time.perf_counter()
    data = encode_mp4(card, 241, 256)
    encode = time.perf_counter() - t0
    import io

    import av

    t0 = time.perf_counter()
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    decode = time.perf_counter() - t0
    print(f"one 241-frame preview: encode {encode * 1000:.0f} ms, decoding it {decode * 1000:.0f} "
          f"ms ({encode / decode:.1f}x), {frames} frames")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="status polls per request")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--inproc", action="store_true", help="run the simulator in this process")
    parser.add_argument("--url", help="bench a simulator already running at this base URL")
    parser.add_argument("--startup", action="store_true",
                        help="only time the simulator's start and stop and one encode")
    args = parser.parse_args()
    if args.startup:
        startup()
        return 0
    # Capacity 64 and 30-60 s generations: nearly all requests stay queued through the bench.
    sim_options = ["--capacity", "64", "--gen-time", "30:60", "--seed", "1"]
    if args.url:
        asyncio.run(bench(args.url.rstrip("/"), args))
        return 0
    if args.inproc:
        from pipeline.sim import SimConfig, Simulator

        with Simulator(SimConfig(capacity=64, gen_time=(30, 60), fetch_timeout=0)) as sim:
            asyncio.run(bench(sim.base_url, args))
        return 0
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "sim", *sim_options],
                            stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()  # type: ignore[union-attr]  # stdout=PIPE: set
        if not base_url.startswith("http"):
            print("bench: the simulator did not start", file=sys.stderr)
            return 1
        asyncio.run(bench(base_url, args, proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
