from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call(fn: Callable[[int], object], *, n: int, rounds: int = 5) -> float:
    """Median seconds per call over several rounds (the median shrugs off a noisy neighbour)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def report(name: str, measured: float, baseline: float, baseline_name: str) -> None:
    print(
        f"{name:<48} {measured * 1000:8.3f} ms/call   {measured / baseline:6.2f}x {baseline_name} "
        f"({baseline * 1000:.3f} ms)"
    )
