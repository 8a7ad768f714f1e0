"""The service benchmark: real processes, every figure of the performance issue, each beside its baseline.

    python -m bench service [--quick] [--workers N] [--threads T] [--latency-ms 20]

Baselines run in the same invocation, against the same sandbox:
- the floor: a bare thread pool (32 threads, one pooled session each) firing the same number of
  ``kfaccount/del`` POSTs with access tokens fetched beforehand;
- the sequential SDK loop, written with ``requests`` the way an SDK-based script does it: for each
  account, ``api_authorizer_token`` and then ``kfaccount/del``, one account after another. It runs on
  a sample and is extrapolated to the drain's size (at 20 ms a call, 5,000 accounts would take minutes).

CPU is read from /proc: utime+stime (and reaped children's) of every process in the process groups
of web, worker(s) and beat, over the scenario, divided by the deletions it finished.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import stack as bench_stack
from bench.stack import BenchMerchant, BenchStack, WorkerLayout
from tests.e2e.harness import AUTHORIZER_TOKEN, DEL, http_session

TERMINAL = ("succeeded", "failed", "rejected")


@dataclass(frozen=True)
class Size:
    merchants: int
    per_merchant: int
    big_per_merchant: int
    probes: int
    sdk_sample: int
    reqs: int
    limited_rate: int
    limited_seconds: int
    bulk_posts: int

    @property
    def drain(self) -> int:
        return self.merchants * self.per_merchant

    @property
    def big(self) -> int:
        return self.merchants * self.big_per_merchant


FULL = Size(
    merchants=50,
    per_merchant=100,
    big_per_merchant=1000,
    probes=20,
    sdk_sample=100,
    reqs=2000,
    limited_rate=20,
    limited_seconds=10,
    bulk_posts=10,
)
QUICK = Size(
    merchants=10,
    per_merchant=100,
    big_per_merchant=300,
    probes=20,
    sdk_sample=40,
    reqs=600,
    limited_rate=20,
    limited_seconds=6,
    bulk_posts=5,
)


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: str
    target: str
    met: bool | None


@dataclass
class DrainResult:
    n: int  # every deletion of the scenario (the probes too): what the CPU is divided by
    bulk: int  # the merchants' bulk requests: what the drain time covers
    seconds: float
    cpu_seconds: float
    del_calls: int
    token_calls: int
    statuses: dict[str, int]
    post_ms: list[float]
    probe_s: list[float]
    worker_rss_mb: float

    @property
    def per_deletion_ms(self) -> float:
        return self.seconds / self.bulk * 1000


# ------------------------------------------------------------------------------------------ helpers


def _stats_paths(stack: BenchStack) -> dict[str, int]:
    return dict(stack.sandbox.stats()["by_path"])


def _max_id(stack: BenchStack) -> int:
    return stack.db.value("SELECT coalesce(max(id), 0) FROM kfaccounts_deletionrequest") or 0


def _wait_terminal(stack: BenchStack, after_id: int, n: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count(*) FROM kfaccounts_deletionrequest WHERE id > %s AND status = ANY(%s)"
    while time.monotonic() < deadline:
        if stack.db.value(sql, after_id, list(TERMINAL)) >= n:
            return
        time.sleep(0.1)
    done = stack.db.value(sql, after_id, list(TERMINAL))
    raise TimeoutError(f"only {done} of {n} deletions finished in {timeout:.0f}s")


def _bulk_post(merchant: BenchMerchant, accounts: list[str]) -> float:
    start = time.perf_counter()
    response = merchant.api.post("/api/v1/deletions/", {"kf_accounts": accounts})
    elapsed = time.perf_counter() - start
    assert response.status_code == 202, response.text[:500]
    return elapsed * 1000


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def drain(
    stack: BenchStack,
    merchants: Sequence[BenchMerchant],
    per_merchant: int,
    *,
    prefix: str,
    prober: BenchMerchant | None = None,
    probes: int = 0,
    probe_spacing: float = 0.25,
    timeout: float = 900,
) -> DrainResult:
    """Every merchant asks for ``per_merchant`` deletions in one bulk POST, all at once; wait for every end."""
    batches = {m.appid: stack.seed(m, prefix, per_merchant) for m in merchants}
    probe_accounts = stack.seed(prober, prefix + "p", probes) if prober and probes else []
    after_id = _max_id(stack)
    before = _stats_paths(stack)
    cpu0 = stack.cpu_seconds()
    wall0 = time.time()
    probe_times: list[float] = []

    def probe() -> None:
        assert prober is not None
        time.sleep(min(1.0, probe_spacing * 2))
        started: list[tuple[int, float]] = []
        for account in probe_accounts:
            t0 = time.time()
            response = prober.api.post("/api/v1/deletions/", {"kf_account": account})
            assert response.status_code == 202, response.text[:300]
            started.append((response.json()["id"], t0))
            time.sleep(probe_spacing)
        ids = [i for i, _ in started]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = stack.db.rows(
                "SELECT id, extract(epoch from finished_at) FROM kfaccounts_deletionrequest "
                "WHERE id = ANY(%s) AND status = ANY(%s)",
                ids,
                list(TERMINAL),
            )
            if len(rows) == len(ids):
                finished = dict(rows)
                probe_times.extend(float(finished[i]) - t0 for i, t0 in started)
                return
            time.sleep(0.05)

    prober_thread = threading.Thread(target=probe) if probe_accounts else None
    if prober_thread:
        prober_thread.start()
    with ThreadPoolExecutor(8) as pool:
        post_ms = list(pool.map(lambda m: _bulk_post(m, batches[m.appid]), merchants))
    total = len(merchants) * per_merchant + len(probe_accounts)
    _wait_terminal(stack, after_id, total, timeout=timeout)
    cpu1 = stack.cpu_seconds()
    if prober_thread:
        prober_thread.join(timeout=60)
    end = stack.db.value(
        "SELECT extract(epoch from max(finished_at)) FROM kfaccounts_deletionrequest WHERE id > %s "
        "AND authorizer_id = ANY(%s)",
        after_id,
        [m.authorizer_id for m in merchants],
    )
    after = _stats_paths(stack)
    statuses = dict(
        stack.db.rows("SELECT status, count(*) FROM kfaccounts_deletionrequest WHERE id > %s GROUP BY status", after_id)
    )
    return DrainResult(
        n=total,
        bulk=len(merchants) * per_merchant,
        seconds=float(end) - wall0,
        cpu_seconds=cpu1 - cpu0,
        del_calls=after.get(DEL, 0) - before.get(DEL, 0),
        token_calls=after.get(AUTHORIZER_TOKEN, 0) - before.get(AUTHORIZER_TOKEN, 0),
        statuses=statuses,
        post_ms=post_ms,
        probe_s=probe_times,
        worker_rss_mb=stack.rss_mb(stack.workers()),
    )


def floor(stack: BenchStack, merchants: Sequence[BenchMerchant], per_merchant: int, *, threads: int = 32) -> float:
    """Seconds for a bare thread pool to fire the same POSTs with tokens fetched beforehand."""
    tokens = stack.access_tokens(merchants)
    batches = {m.appid: stack.seed(m, "floor", per_merchant) for m in merchants}
    # Interleaved by merchant, as a drain of many merchants is.
    work = [(tokens[m.appid], batches[m.appid][i]) for i in range(per_merchant) for m in merchants]
    local = threading.local()
    url = f"{stack.sandbox_url}{DEL}"

    def fire(item: tuple[str, str]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = http_session()
        token, account = item
        answer = session.post(url, params={"access_token": token}, json={"kf_account": account}, timeout=30).json()
        return answer["errcode"]

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        codes = list(pool.map(fire, work))
    elapsed = time.perf_counter() - start
    assert codes.count(0) == len(codes), f"the bare pool got errors: {set(codes)}"
    return elapsed


def sdk_loop(stack: BenchStack, merchant: BenchMerchant, sample: int) -> float:
    """Seconds per account for the sequential SDK-style loop: a token, then the delete, one after another."""
    creds = stack.sdk_credentials(merchant)
    accounts = stack.seed(merchant, "sdk", sample)
    session = http_session()
    base = stack.sandbox_url
    start = time.perf_counter()
    for account in accounts:
        token = session.post(
            f"{base}{AUTHORIZER_TOKEN}",
            params={"component_access_token": creds["component_access_token"]},
            json={
                "component_appid": creds["component_appid"],
                "authorizer_appid": creds["authorizer_appid"],
                "authorizer_refresh_token": creds["authorizer_refresh_token"],
            },
            timeout=30,
        ).json()["authorizer_access_token"]
        answer = session.post(
            f"{base}{DEL}", params={"access_token": token}, json={"kf_account": account}, timeout=30
        ).json()
        assert answer["errcode"] == 0, answer
    return (time.perf_counter() - start) / sample


def requests_per_second(
    fire: Callable[[requests.Session, int], requests.Response], *, total: int, threads: int = 8
) -> float:
    local = threading.local()

    def one(i: int) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = http_session()
        return fire(session, i).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        codes = list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - start
    assert all(code in (200, 202) for code in codes), {c for c in codes if c not in (200, 202)}
    return total / elapsed


def rate_limited(
    stack: BenchStack, limited: BenchMerchant, others: Sequence[BenchMerchant], size: Size
) -> tuple[float, float, float] | None:
    """(the limited merchant's measured calls/s, its limit, the others' deletions/s), or None without limits."""
    columns = {
        c
        for (c,) in stack.db.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'authorizers_authorizer'"
        )
    }
    if "rate_limit_per_second" not in columns:
        return None
    limit = size.limited_rate
    stack.manage("set_rate_limit", limited.appid, str(limit))
    n_limited = limit * size.limited_seconds
    mark = stack.sandbox.mark()
    accounts = stack.seed(limited, "rl", n_limited)
    other_batches = {m.appid: stack.seed(m, "rlo", size.per_merchant * 2) for m in others}
    after_id = _max_id(stack)
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(_bulk_post, limited, accounts)]
        jobs += [pool.submit(_bulk_post, m, other_batches[m.appid]) for m in others]
        for job in jobs:
            job.result()
    _wait_terminal(stack, after_id, n_limited + sum(len(b) for b in other_batches.values()), timeout=600)
    calls = stack.sandbox.calls(path=DEL, since=mark)
    mine = sorted(c["at"] for c in calls if c["authorizer_appid"] == limited.appid)
    theirs = sorted(c["at"] for c in calls if c["authorizer_appid"] != limited.appid)
    measured = (len(mine) - 1) / (mine[-1] - mine[0])
    others_rate = (len(theirs) - 1) / (theirs[-1] - theirs[0])
    return measured, float(limit), others_rate


# ------------------------------------------------------------------------------------------- report


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.1f} {unit}" if value >= 10 else f"{value:,.2f} {unit}"


def table(rows: Sequence[Row]) -> str:
    header = ("figure", "measured", "baseline (same run)", "ratio", "target", "")
    cells = [header] + [
        (r.figure, r.measured, r.baseline, r.ratio, r.target, "" if r.met is None else ("met" if r.met else "NOT met"))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(len(header))) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(argv: Sequence[str] = ()) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench service")
    parser.add_argument("--quick", action="store_true", help="a small size for development")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "8")))
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip: big,ratelimit,rps,sdk")
    options = parser.parse_args(list(argv))
    size = QUICK if options.quick else FULL
    skip = set(filter(None, options.skip.split(",")))
    layout = WorkerLayout(processes=options.workers, threads=options.threads)
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="kfbench-service-"))
    print(
        f"service bench ({'quick' if options.quick else 'full'}): {size.drain:,} deletions over {size.merchants} "
        f"merchants, sandbox latency {options.latency_ms} ms, {layout.describe()}, {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.2f}",
        flush=True,
    )
    started = time.monotonic()
    stack = bench_stack.start(tmp, latency_ms=options.latency_ms, layout=layout)
    rows: list[Row] = []
    try:
        merchants = stack.new_merchants(size.merchants, label="m")
        prober, sdk, limited = stack.new_merchants(3, label="x")
        print(f"  stack and {size.merchants + 3} merchants ready in {time.monotonic() - started:.0f}s", flush=True)

        floor_s = floor(stack, merchants, size.per_merchant)
        print(f"  floor: {floor_s:.1f}s", flush=True)
        # The probes are spread over about the time the floor took, so that they fall inside the drain.
        small = drain(
            stack,
            merchants,
            size.per_merchant,
            prefix="d",
            prober=prober,
            probes=size.probes,
            probe_spacing=max(0.05, floor_s / size.probes),
        )
        print(f"  drain {small.bulk:,}: {small.seconds:.1f}s, {small.statuses}", flush=True)
        drained = small.bulk
        sdk_per = sdk_loop(stack, sdk, size.sdk_sample) if "sdk" not in skip else float("nan")
        sdk_s = sdk_per * small.bulk
        print(f"  sequential loop: {sdk_per * 1000:.1f} ms/account", flush=True)
        rows += [
            Row(
                f"drain {drained:,} / {size.merchants} merchants (+{size.probes} probes): service ÷ floor",
                _fmt(small.seconds, "s"),
                f"floor {_fmt(floor_s, 's')}",
                f"{small.seconds / floor_s:.2f}x",
                "≤ 1.5x",
                small.seconds / floor_s <= 1.5,
            ),
            Row(
                "speed-up over the sequential SDK loop",
                _fmt(small.seconds, "s"),
                f"loop {_fmt(sdk_s, 's')} (extrapolated from {size.sdk_sample})",
                f"{sdk_s / small.seconds:.1f}x",
                "≥ 10x",
                sdk_s / small.seconds >= 10,
            ),
            Row(
                "CPU per deletion, web + workers + beat",
                _fmt(small.cpu_seconds / small.n * 1000, "ms"),
                f"{small.cpu_seconds:.1f} s CPU in {small.seconds:.1f} s",
                "",
                "≤ 5 ms",
                small.cpu_seconds / small.n * 1000 <= 5,
            ),
            Row(
                "upstream calls for the drain",
                f"{small.del_calls:,} del, {small.token_calls} token",
                f"{small.n:,} deletions",
                "",
                f"exactly {small.n:,} del, ≤ {size.merchants} token",  # the probes' deletions count too
                small.del_calls == small.n and small.token_calls <= size.merchants,
            ),
            Row(
                f"another merchant's single deletion during the drain, p95 of {len(small.probe_s)}",
                _fmt(_percentile(small.probe_s, 95), "s"),
                f"p50 {_fmt(_percentile(small.probe_s, 50), 's')}, max {_fmt(max(small.probe_s or [0]), 's')}",
                "",
                "≤ 2 s",
                bool(small.probe_s) and _percentile(small.probe_s, 95) <= 2,
            ),
        ]
        if "sdk" in skip:
            rows = [r for r in rows if not r.figure.startswith("speed-up over the sequential")]
        if "big" not in skip:
            big = drain(stack, merchants, size.big_per_merchant, prefix="b")
            print(f"  drain {big.bulk:,}: {big.seconds:.1f}s, {big.statuses}", flush=True)
            rows += [
                Row(
                    f"worker RSS after {big.n:,} deletions vs after {small.n:,}",
                    _fmt(big.worker_rss_mb, "MB"),
                    _fmt(small.worker_rss_mb, "MB"),
                    f"{big.worker_rss_mb / small.worker_rss_mb:.2f}x",
                    "within 10 %",
                    abs(big.worker_rss_mb / small.worker_rss_mb - 1) <= 0.10,
                ),
                Row(
                    f"time per deletion at {big.bulk:,} vs {small.bulk:,}",
                    _fmt(big.per_deletion_ms, "ms"),
                    _fmt(small.per_deletion_ms, "ms"),
                    f"{big.per_deletion_ms / small.per_deletion_ms:.2f}x",
                    "within 10 %",
                    abs(big.per_deletion_ms / small.per_deletion_ms - 1) <= 0.10,
                ),
                Row(
                    f"CPU per deletion at {big.n:,}",
                    _fmt(big.cpu_seconds / big.n * 1000, "ms"),
                    _fmt(small.cpu_seconds / small.n * 1000, "ms") + f" at {small.n:,}",
                    f"{(big.cpu_seconds / big.n) / (small.cpu_seconds / small.n):.2f}x",
                    "≤ 5 ms",
                    big.cpu_seconds / big.n * 1000 <= 5,
                ),
            ]
        if "ratelimit" not in skip:
            limited_result = rate_limited(stack, limited, merchants[:5], size)
            if limited_result is None:
                rows.append(
                    Row("a rate-limited merchant held at its limit", "n/a", "no rate limits", "", "±5 %", False)
                )
            else:
                measured, limit, others_rate = limited_result
                floor_rate = small.n / floor_s
                rows += [
                    Row(
                        "a rate-limited merchant's del calls/s ÷ its limit",
                        _fmt(measured, "/s"),
                        f"limit {_fmt(limit, '/s')}",
                        f"{measured / limit:.3f}",
                        "0.95–1.05",
                        0.95 <= measured / limit <= 1.05,
                    ),
                    Row(
                        "meanwhile 5 unlimited merchants, del calls/s",
                        _fmt(others_rate, "/s"),
                        f"floor {_fmt(floor_rate, '/s')}",
                        f"{others_rate / floor_rate:.2f}x",
                        "full speed",
                        None,
                    ),
                ]
        if "rps" not in skip:
            # The web server alone: the workers are stopped (SIGSTOP) so both endpoints see the same CPU.
            merchant = merchants[-1]
            stack.pause_workers(True)
            try:
                headers = dict(merchant.api.http.headers)

                def ping(s: requests.Session, i: int) -> requests.Response:
                    return s.get(f"{stack.web_url}/api/v1/ping/", headers=headers, timeout=30)

                def delete(s: requests.Session, i: int) -> requests.Response:
                    body = {"kf_account": f"rps{i}@{merchant.alias}"}
                    return s.post(f"{stack.web_url}/api/v1/deletions/", json=body, headers=headers, timeout=30)

                # In alternating rounds, so that a change in the machine's speed meets both alike.
                rounds, per_round = 5, size.reqs // 5
                noop_s = single_s = 0.0
                for r in range(rounds):
                    offset = r * per_round

                    def delete_next(s: requests.Session, i: int, offset: int = offset) -> requests.Response:
                        return delete(s, offset + i)  # a new account every request, across rounds

                    noop_s += per_round / requests_per_second(ping, total=per_round)
                    single_s += per_round / requests_per_second(delete_next, total=per_round)
                noop, single = rounds * per_round / noop_s, rounds * per_round / single_s
                # Bulk requests one after another, as a merchant's script sends them, timed at the client.
                bulk_ms = [
                    _bulk_post(merchant, [f"bulk{k}x{i}@{merchant.alias}" for i in range(1000)])
                    for k in range(size.bulk_posts)
                ]
            finally:
                stack.pause_workers(False)
            rows.append(
                Row(
                    f"bulk POST /api/v1/deletions/ of 1,000, p50 of {len(bulk_ms)}",
                    _fmt(statistics.median(bulk_ms), "ms"),
                    f"p95 {_fmt(_percentile(bulk_ms, 95), 'ms')}, one at a time",
                    "",
                    "≤ 300 ms",
                    statistics.median(bulk_ms) <= 300,
                )
            )
            rows.append(
                Row(
                    "single deletion requests/s vs a DRF no-op endpoint",
                    _fmt(single, "/s"),
                    f"GET /api/v1/ping/ {_fmt(noop, '/s')}",
                    f"{single / noop:.2f}x",
                    "≥ 0.5x",
                    single / noop >= 0.5,
                )
            )
    finally:
        stack.stop()
    load1 = os.getloadavg()
    print()
    print(table(rows))
    print(
        f"\n{layout.describe()}; sandbox latency {options.latency_ms} ms; load average {load0[0]:.2f} at start, "
        f"{load1[0]:.2f} at end (1 min); {time.monotonic() - started:.0f} s in all",
        flush=True,
    )
    return rows
