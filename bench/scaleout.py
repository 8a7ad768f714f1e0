"""The drain's scale-out over worker processes (issue 18): the same drain with 1, 2 and 4 workers.

    python -m bench scaleout [--workers 1,2,4] [--merchants 50] [--per-merchant 200] [--latency-ms 100]

The real stack of the service bench (bench/stack.py: PostgreSQL, Redis, the sandbox, gunicorn, beat,
workers ``-P threads -c 8``, shipped defaults otherwise) with the sandbox answering every WeChat call
after a standing 100 ms, WeChat's order of latency. One stack; before each drain the workers are
brought to the next count and each answers a ping. Each drain: every merchant asks for its deletions
in one bulk POST at once, timed from the POSTs to the last deletion's end.

Printed per count: deletions/s and its ratio to one worker; the mean number of WeChat calls in flight
(the sum of the sandbox's call durations over the drain's time: with 100 ms calls, 10 in flight is
100 deletions/s); the CPU of the service's processes (web, workers, beat) and of the whole machine
(from /proc/stat, every process: PostgreSQL, Redis and the sandbox too) as a share of its cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import stack as bench_stack
from bench.service import drain
from bench.stack import WorkerLayout
from tests.e2e.harness import DEL


@dataclass
class Point:
    workers: int
    deletions: int
    seconds: float
    in_flight: float
    service_cpu: float  # CPU-seconds per second of the service's processes
    machine_busy: float  # share of all cores busy, every process


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def scale_table(points: list[Point]) -> list[str]:
    base = points[0].deletions / points[0].seconds
    cores = os.cpu_count() or 1
    lines = [
        "| worker processes | deletions/s | × one worker | drain | WeChat calls in flight (mean) "
        f"| service CPU (of {cores} cores) | machine busy |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        rate = p.deletions / p.seconds
        lines.append(
            f"| {p.workers} | {rate:,.0f} | {rate / base:.2f}x | {p.deletions:,} in {p.seconds:.1f} s | "
            f"{p.in_flight:.1f} | {p.service_cpu:.2f} | {p.machine_busy * 100:.0f} % |"
        )
    return lines


def run(argv: list[str]) -> list[Point]:
    parser = argparse.ArgumentParser(prog="python -m bench scaleout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, ascending (default 1,2,4)")
    parser.add_argument("--merchants", type=int, default=50)
    parser.add_argument("--per-merchant", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8, help="each worker's -c (default 8, the image's)")
    parser.add_argument("--latency-ms", type=int, default=100)
    options = parser.parse_args(argv)
    counts = sorted(int(c) for c in options.workers.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="kfbench-scaleout-"))
    load0 = os.getloadavg()
    print(
        f"scale-out: {options.merchants} merchants x {options.per_merchant} deletions, sandbox latency "
        f"{options.latency_ms} ms, workers {counts} (-P threads -c {options.threads}), {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.2f}",
        flush=True,
    )
    started = time.monotonic()
    stack = bench_stack.start(
        tmp, latency_ms=options.latency_ms, layout=WorkerLayout(processes=counts[0], threads=options.threads)
    )
    points: list[Point] = []
    try:
        merchants = stack.new_merchants(options.merchants, label="s")
        print(f"  stack and {options.merchants} merchants ready in {time.monotonic() - started:.0f} s", flush=True)
        for count in counts:
            while len(stack.workers()) < count:
                stack.add_worker()
            stack.wait_workers_ready()
            mark = stack.sandbox.mark()
            busy0, total0 = _machine_jiffies()
            result = drain(stack, merchants, options.per_merchant, prefix=f"w{count}x", timeout=1800)
            busy1, total1 = _machine_jiffies()
            durations = sum(c["duration_ms"] for c in stack.sandbox.calls(path=DEL, since=mark)) / 1000
            point = Point(
                workers=count,
                deletions=result.bulk,
                seconds=result.seconds,
                in_flight=durations / result.seconds,
                service_cpu=result.cpu_seconds / result.seconds,
                machine_busy=(busy1 - busy0) / max(1, total1 - total0),
            )
            points.append(point)
            print(
                f"  {count} worker(s): {result.bulk:,} in {result.seconds:.1f} s "
                f"({result.bulk / result.seconds:,.0f}/s), {result.statuses}",
                flush=True,
            )
    finally:
        stack.stop()
    load1 = os.getloadavg()
    print()
    print("\n".join(scale_table(points)))
    print(
        f"\nsandbox latency {options.latency_ms} ms; {os.cpu_count()} CPUs; load average {load0[0]:.2f} at the "
        f"start, {load1[0]:.2f} at the end (1 min); {time.monotonic() - started:.0f} s in all",
        flush=True,
    )
    return points
