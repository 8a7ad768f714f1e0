"""The scheduled jobs at the size of a large service provider (issue 18), after the scale bench's pages.

Each job's own code runs on the seeded database, with WeChat played by a sandbox process on loopback
that holds one authorized account per merchant WeChat would list (POST /sandbox/accounts/bulk):

- one paced tick of the merchant re-read and of the kf re-sync, as beat's task runs it: how many
  merchants the tick takes, the SQL that picks the slice, the dispatch (one Celery message per
  merchant to a real Redis broker); then the slice's WeChat calls made by one real Celery worker
  process (``-P threads -c 8``, the image's layout) started on the same database, broker and sandbox;
- the nightly reconciliation over api_get_authorizer_list (every page of 500, in this process);
- audit retention over the oldest tenth of the log, in the service's batches.

For each: the wall time; the peak memory (tracemalloc, Python's own allocations, in a second run of
the same work so that tracing does not slow the timed one; for the worker, its peak RSS); and the
longest lock: the longest transaction holding row locks (one that has a transaction id, i.e. wrote or
locked rows) among the database's other sessions, sampled from pg_stat_activity every 5 ms.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from devtools import procs

T = TypeVar("T")

SAMPLE_SECONDS = 0.005
# Targets: a tick is a small share of its 300 s period; no row lock held long enough to be felt by a
# deletion or a page (they wait on it); the nightly jobs finish in well under their night.
TICK_TARGET_S = 1.0
LOCK_TARGET_MS = 500
MEMORY_TARGET_MB = 100
RECONCILE_TARGET_S = 600
# Reconciliation's planted differences: so many active merchants WeChat no longer lists, strangers it
# lists, merchants revoked here that it still lists (each restored with one token call).
PLANTED = 3
WORKER_THREADS = 8


@dataclass
class Watch:
    """What the sampler saw while a job ran (see the module doc)."""

    longest_tx_ms: float = 0.0
    longest_tx_query: str = ""
    longest_stmt_ms: float = 0.0
    peak_rss_mb: float = 0.0
    samples: int = 0


@dataclass
class JobRow:
    job: str
    work: str
    wall_s: float
    memory: str
    watch: Watch
    target: str
    met: bool


@dataclass
class Sandbox:
    url: str
    proc: procs.Proc
    http: requests.Session = field(default_factory=requests.Session)

    def control(self, method: str, endpoint: str, json: Any = None, **params: Any) -> Any:
        response = self.http.request(method, f"{self.url}/sandbox{endpoint}", json=json, params=params, timeout=300)
        response.raise_for_status()
        return response.json()

    def count(self, path: str) -> int:
        return int(self.control("GET", "/stats")["by_path"].get(path, 0))


INFO = "/cgi-bin/component/api_get_authorizer_info"
LIST = "/cgi-bin/component/api_get_authorizer_list"
TOKEN = "/cgi-bin/component/api_authorizer_token"
KF_LIST = "/cgi-bin/customservice/getkflist"


# ------------------------------------------------------------------------------------- processes


def sandbox_start(tmp: Path) -> Sandbox:
    """The sandbox as its own process (no Django), the demo component, no pushes, no demo merchants."""
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    proc = procs.Proc(
        "sandbox",
        procs.python("-m", "sandbox", "--port", str(port), "--quiet", "--no-seed"),
        env,
        tmp / "sandbox.log",
        cwd=procs.ROOT,
    ).start()
    sandbox = Sandbox(f"http://127.0.0.1:{port}", proc)
    sandbox.http.trust_env = False
    procs.wait_until(lambda: sandbox.control("GET", "/health")["ok"], timeout=60, what="the sandbox")
    return sandbox


def worker_start(tmp: Path) -> procs.Proc:
    """One Celery worker as the image runs it, on the environment this process was set up with."""
    proc = procs.Proc(
        "worker",
        procs.celery(
            "worker",
            "-P",
            "threads",
            "-c",
            str(WORKER_THREADS),
            "-l",
            "warning",
            "-n",
            f"scale{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ),
        {**os.environ, "PYTHONPATH": str(procs.ROOT)},
        tmp / "worker.log",
        cwd=tmp,
    ).start()
    procs.wait_until(
        lambda: (
            subprocess.run(
                procs.celery("inspect", "ping", "-d", f"scale{os.getpid()}@{os.uname().nodename}", "-t", "2"),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                cwd=procs.ROOT,
                timeout=60,
                check=False,
            ).returncode
            == 0
        ),
        timeout=120,
        interval=1,
        what="the worker to answer a ping",
    )
    return proc


# ------------------------------------------------------------------------------------- measuring


def _rss_mb(pgrps: set[int]) -> float:
    from bench.stack import PAGE, _proc_stats

    return sum(s["rss"] for s in _proc_stats() if s["pgrp"] in pgrps) * PAGE / 1e6


@contextmanager
def watched(database_url: str, *, pgrps: Sequence[int] = ()) -> Iterator[Watch]:
    """Sample the database's other sessions (and the given process groups' RSS) while the block runs."""
    import psycopg

    watch = Watch()
    stop = threading.Event()
    groups = set(pgrps)
    sql = (
        "SELECT extract(epoch FROM clock_timestamp() - xact_start) * 1000, backend_xid IS NOT NULL, "
        "CASE WHEN state = 'active' THEN extract(epoch FROM clock_timestamp() - query_start) * 1000 END, "
        "left(query, 120) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )

    def sample() -> None:
        last_rss = 0.0
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                for tx_ms, holds, stmt_ms, query in conn.execute(sql).fetchall():
                    if holds and tx_ms is not None and float(tx_ms) > watch.longest_tx_ms:
                        watch.longest_tx_ms, watch.longest_tx_query = float(tx_ms), " ".join(str(query).split())
                    if stmt_ms is not None:
                        watch.longest_stmt_ms = max(watch.longest_stmt_ms, float(stmt_ms))
                watch.samples += 1
                if groups and time.monotonic() - last_rss > 0.05:
                    watch.peak_rss_mb = max(watch.peak_rss_mb, _rss_mb(groups))
                    last_rss = time.monotonic()
                stop.wait(SAMPLE_SECONDS)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(timeout=10)


def traced_peak_mb(work: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def wait_for(check: Callable[[], int], goal: int, *, stall: float = 120) -> int:
    """Poll ``check`` until it reaches ``goal``; give up when it has not moved for ``stall`` seconds."""
    best, moved = -1, time.monotonic()
    while True:
        now = check()
        if now >= goal:
            return now
        if now > best:
            best, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            return now
        time.sleep(0.1)


def per_day(merchants: int, period_s: int) -> int:
    """Calls a day for a job that calls once per merchant per period."""
    return math.ceil(merchants * 86400 / period_s)


# ------------------------------------------------------------------------------------------- the jobs


def wechat_side(sandbox: Sandbox) -> dict[str, str]:
    """Put on the sandbox every merchant WeChat lists (those not revoked here), with the planted
    differences; hand the platform a verify ticket. Returns each listed merchant's refresh token."""
    from django.utils import timezone

    from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential
    from authorizers.tokens import verify_ticket_store

    not_revoked = list(
        Authorizer.objects.exclude(status=AuthorizerStatus.REVOKED).order_by("pk").values_list("appid", flat=True)
    )
    revoked = list(
        Authorizer.objects.filter(status=AuthorizerStatus.REVOKED).order_by("pk").values_list("appid", flat=True)
    )
    strangers = [f"wx{0xFFFF0000 + n:016x}" for n in range(PLANTED)]
    listed = not_revoked[:-PLANTED] + revoked[:PLANTED] + strangers
    tokens: dict[str, str] = {}
    for start in range(0, len(listed), 20_000):
        chunk = listed[start : start + 20_000]
        answer = sandbox.control("POST", "/accounts/bulk", {"appids": chunk, "refresh_tokens": True})
        tokens.update(answer["refresh_tokens"])
    # A new sandbox is a new WeChat: what an earlier run cached of the component's is void.
    ComponentCredential.objects.all().delete()
    ticket = sandbox.control("POST", "/push_ticket")["ticket"]
    verify_ticket_store(ticket=ticket, created_at=timezone.now())
    return tokens


@dataclass
class Tick:
    merchants: int
    wall_s: float
    pick_ms: float  # the claim's SQL: count, SELECT … FOR UPDATE SKIP LOCKED, UPDATE
    sql_ms: float  # every statement of the tick
    queries: int


def run_tick(tick: Callable[[], int]) -> Tick:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        merchants = tick()
        wall = time.perf_counter() - started
    times = [float(q["time"]) * 1000 for q in captured]
    # The claim is the first statements: the count, then the locked SELECT and the stamping UPDATE.
    claim = next((i for i, q in enumerate(captured) if "FOR UPDATE SKIP LOCKED" in q["sql"]), 0)
    return Tick(merchants, wall, sum(times[: claim + 2]), sum(times), len(times))


def _claimed(stamp: str, since: Any) -> list[Any]:
    from authorizers.models import Authorizer

    return list(Authorizer.objects.filter(**{f"{stamp}__gte": since}).order_by("pk"))


def _audits_since(since: Any, actions: Sequence[str]) -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.filter(at__gte=since, action__in=list(actions)).count()


def prepare_kf(sandbox: Sandbox, merchants: Sequence[Any], tokens: dict[str, str]) -> None:
    """The re-sync slice's merchants as a re-sync usually finds them, unchanged since the last one:
    each one's kf accounts on the sandbox exactly as the mirror has them (the ids and avatars the
    sandbox assigns written back to the mirror), and a fresh access token here, as the token job keeps
    them (a seeded row has none)."""
    from django.utils import timezone

    from authorizers.tokens import authorizer_tokens_store, component_token_get
    from kfaccounts.models import KfAccount

    http = requests.Session()
    http.trust_env = False
    component = component_token_get()  # the platform's own, as the worker holds it
    mirror: dict[int, list[Any]] = {}
    for row in KfAccount.objects.filter(authorizer__in=merchants, gone_at__isnull=True).order_by("id"):
        mirror.setdefault(row.authorizer_id, []).append(row)
    now = timezone.now()
    written: list[Any] = []
    for merchant in merchants:
        rows = mirror.get(merchant.pk, [])
        items = [
            {
                "kf_account": r.kf_account,
                "kf_nick": r.kf_nick,
                "kf_wx": r.kf_wx or None,
                "invite_wx": r.invite_wx or None,
                "invite_status": r.invite_status or None,
            }
            for r in rows
        ]
        created = sandbox.control("POST", f"/accounts/{merchant.appid}/kf", {"kf_accounts": items})["created"]
        for row, listed in zip(rows, created, strict=True):
            row.kf_id, row.kf_headimgurl = listed["kf_id"], listed["kf_headimgurl"]
            if not row.kf_wx and row.unbound_since is None:
                row.unbound_since = now
        written += rows
        issued = http.post(
            f"{sandbox.url}{TOKEN}",
            params={"component_access_token": component},
            json={
                "component_appid": _setting("WECHAT_COMPONENT_APPID"),
                "authorizer_appid": merchant.appid,
                "authorizer_refresh_token": tokens[merchant.appid],
            },
            timeout=30,
        ).json()
        tokens[merchant.appid] = issued["authorizer_refresh_token"]
        authorizer_tokens_store(
            authorizer=merchant,
            access_token=issued["authorizer_access_token"],
            expires_in=issued["expires_in"],
            refresh_token=issued["authorizer_refresh_token"],
        )
        merchant.save(
            update_fields=[
                "refresh_token_ciphertext",
                "access_token_ciphertext",
                "access_token_expires_at",
                "access_token_refreshed_at",
            ]
        )
    KfAccount.objects.bulk_update(written, ["kf_id", "kf_headimgurl", "unbound_since"], batch_size=2000)


def _setting(name: str) -> str:
    from django.conf import settings

    return str(getattr(settings, name))


def paced_job(
    *,
    name: str,
    tick: Callable[[], int],
    stamp: str,
    path: str,
    done_actions: Sequence[str],
    sandbox: Sandbox,
    worker: procs.Proc,
    database_url: str,
    prepare: Callable[[list[Any]], None] | None = None,
) -> list[JobRow]:
    """One tick timed (the worker held with SIGSTOP so the slice waits in the broker), its memory
    from a second tick under tracemalloc (the next slice, the same size), then both slices' calls
    made by the worker."""
    from django.utils import timezone

    worker.signal(signal.SIGSTOP)
    try:
        since = timezone.now()
        with watched(database_url) as tick_watch:
            first = run_tick(tick)
        peak = traced_peak_mb(tick)
        slices = _claimed(stamp, since)
        if prepare is not None:
            prepare(slices)
    finally:
        calls_before = sandbox.count(path)
        done_before = _audits_since(since, done_actions)
        worker.signal(signal.SIGCONT)
    goal = len(slices)
    started = time.perf_counter()
    pgrp = [worker.popen.pid] if worker.popen is not None else []
    with watched(database_url, pgrps=pgrp) as work_watch:
        done = wait_for(lambda: _audits_since(since, done_actions) - done_before, goal)
        wall = time.perf_counter() - started
    calls = sandbox.count(path) - calls_before
    tick_row = JobRow(
        job=f"{name}: one tick",
        work=(
            f"{first.merchants:,} merchants; pick {first.pick_ms:,.0f} ms SQL, the rest dispatch "
            f"({first.queries} statements, {first.sql_ms:,.0f} ms SQL in all)"
        ),
        wall_s=first.wall_s,
        memory=f"{peak:,.1f} MB",
        watch=tick_watch,
        target=f"≤ {TICK_TARGET_S:g} s, lock ≤ {LOCK_TARGET_MS} ms",
        met=first.wall_s <= TICK_TARGET_S and tick_watch.longest_tx_ms <= LOCK_TARGET_MS,
    )
    work_row = JobRow(
        job=f"{name}: two slices' calls, one worker",
        work=f"{done:,} of {goal:,} done, {calls:,} {path.rsplit('/', 1)[-1]} calls ({calls / wall:,.0f}/s)",
        wall_s=wall,
        memory=f"worker RSS {work_watch.peak_rss_mb:,.0f} MB",
        watch=work_watch,
        target=f"≤ {_setting('PACED_TICK_SECONDS')} s (one tick's period) for two slices, lock ≤ {LOCK_TARGET_MS} ms",
        met=done >= goal
        and wall <= float(_setting("PACED_TICK_SECONDS"))
        and work_watch.longest_tx_ms <= LOCK_TARGET_MS,
    )
    return [tick_row, work_row]


def reconciliation(sandbox: Sandbox, database_url: str) -> JobRow:
    from audit.services import Actor
    from authorizers.reconciliation import authorizers_reconcile

    pages_before = sandbox.control("GET", "/calls", path=LIST)["last_seq"]
    with watched(database_url) as watch:
        started = time.perf_counter()
        result = authorizers_reconcile(actor=Actor.schedule("scale bench"))
        wall = time.perf_counter() - started
    bodies = [c["body"] for c in sandbox.control("GET", "/calls", path=LIST, since=pages_before)["calls"]]
    paged = [(b.get("offset"), b.get("count")) for b in bodies]
    expected = [(offset, 500) for offset in range(0, result.listed, 500)]
    peak = traced_peak_mb(lambda: authorizers_reconcile(actor=Actor.schedule("scale bench, traced")))
    return JobRow(
        job="reconciliation (nightly)",
        work=(
            f"{len(paged)} pages of 500 ({'offsets 0, 500, … in order' if paged == expected else f'NOT paged as expected: {paged[:3]}…'}), "
            f"{result.listed:,} listed; {len(result.gone)} gone, {len(result.unknown)} unknown, "
            f"{len(result.restored)} restored"
        ),
        wall_s=wall,
        memory=f"{peak:,.1f} MB",
        watch=watch,
        target=f"≤ {RECONCILE_TARGET_S} s, ≤ {MEMORY_TARGET_MB} MB, lock ≤ {LOCK_TARGET_MS} ms",
        met=paged == expected
        and wall <= RECONCILE_TARGET_S
        and peak <= MEMORY_TARGET_MB
        and watch.longest_tx_ms <= LOCK_TARGET_MS,
    )


def retention(database_url: str) -> JobRow | None:
    """Audit retention as beat runs it over the oldest tenth of the log, one batch at a time so each
    batch's time is seen; its memory over ten more batches under tracemalloc."""
    from django.conf import settings
    from django.utils import timezone

    from audit.models import AuditEvent
    from audit.services import audit_events_prune

    oldest = AuditEvent.objects.order_by("at").values_list("at", flat=True).first()
    if oldest is None:
        return None
    cutoff = oldest + (timezone.now() - oldest) / 10
    batch = settings.AUDIT_RETENTION_BATCH
    batches: list[float] = []
    deleted = 0
    with watched(database_url) as watch:
        started = time.perf_counter()
        while True:
            step = time.perf_counter()
            n = audit_events_prune(older_than=cutoff, batch=batch, max_batches=1)
            batches.append(time.perf_counter() - step)
            deleted += n
            if n < batch:
                break
        wall = time.perf_counter() - started
    further = cutoff + (timezone.now() - cutoff) / 100
    peak = traced_peak_mb(lambda: audit_events_prune(older_than=further, batch=batch, max_batches=10))
    return JobRow(
        job="audit retention",
        work=(
            f"{deleted:,} events ({deleted / wall:,.0f}/s), {len(batches)} batches of {batch:,}; "
            f"batch median {sorted(batches)[len(batches) // 2] * 1000:,.0f} ms, longest {max(batches) * 1000:,.0f} ms"
        ),
        wall_s=wall,
        memory=f"{peak:,.1f} MB",
        watch=watch,
        target=f"each batch ≤ {LOCK_TARGET_MS} ms, ≤ {MEMORY_TARGET_MB} MB",
        met=max(batches) * 1000 <= LOCK_TARGET_MS and peak <= MEMORY_TARGET_MB,
    )


def calls_per_day() -> list[str]:
    from django.conf import settings

    from authorizers.models import Authorizer, AuthorizerStatus
    from authorizers.policy import eligible_q

    active = Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE)
    n_active = active.count()
    n_eligible = active.filter(eligible_q()).count()
    tick, cap = settings.PACED_TICK_SECONDS, settings.PACED_SLICE_MAX
    lines = []
    for what, merchants, period, api, whose in (
        ("merchant re-read", n_active, settings.MERCHANT_REREAD_SECONDS, "api_get_authorizer_info", "the platform's"),
        ("kf re-sync", n_eligible, settings.KF_RESYNC_SECONDS, "getkflist", "each merchant's own"),
    ):
        slice_ = min(cap, math.ceil(merchants * tick / period))
        lines.append(
            f"{what}: {merchants:,} merchants once every {period / 3600:g} h = {per_day(merchants, period):,} "
            f"{api} calls a day ({per_day(1, period)} a merchant, on {whose} quota), paced {slice_:,} a tick every "
            f"{tick} s ({slice_ / tick:.2f} calls/s on average; at most {cap:,} a tick)"
        )
    listed = Authorizer.objects.exclude(status=AuthorizerStatus.REVOKED).count()  # authorized at WeChat
    pages = math.ceil(listed / 500)
    lines.append(f"reconciliation: {pages} api_get_authorizer_list calls a night ({listed:,} listed, 500 a page)")
    return lines


def run_all(*, database_url: str) -> list[JobRow]:
    """Every scheduled job at the seeded size (see the module doc); the sandbox and worker are
    started and stopped here."""
    from audit.actions import AuditAction
    from authorizers.reconciliation import merchants_reread_tick
    from kfaccounts.resync import kf_accounts_resync_tick

    tmp = Path(tempfile.mkdtemp(prefix="kfscale-jobs-"))
    sandbox = _SANDBOX
    if sandbox is None:
        raise RuntimeError("start_sandbox() first: its URL must be in the settings before Django starts")
    rows: list[JobRow] = []
    worker: procs.Proc | None = None
    try:
        tokens = wechat_side(sandbox)
        worker = worker_start(tmp)
        rows += paced_job(
            name="merchant re-read",
            tick=merchants_reread_tick,
            stamp="info_reread_planned_at",
            path=INFO,
            done_actions=[AuditAction.AUTHORIZER_INFO_REFRESHED],
            sandbox=sandbox,
            worker=worker,
            database_url=database_url,
        )
        rows += paced_job(
            name="kf re-sync",
            tick=kf_accounts_resync_tick,
            stamp="kf_resync_planned_at",
            path=KF_LIST,
            done_actions=[
                AuditAction.KF_LIST_SYNCED,
                AuditAction.KF_LIST_SYNC_REFUSED,
            ],
            sandbox=sandbox,
            worker=worker,
            database_url=database_url,
            prepare=lambda merchants: prepare_kf(sandbox, merchants, tokens),
        )
        worker.stop()
        rows.append(reconciliation(sandbox, database_url))
        kept = retention(database_url)
        if kept is not None:
            rows.append(kept)
    finally:
        if worker is not None:
            worker.stop()
    return rows


_SANDBOX: Sandbox | None = None


def start_sandbox() -> Sandbox:
    global _SANDBOX
    _SANDBOX = sandbox_start(Path(tempfile.mkdtemp(prefix="kfscale-sandbox-")))
    return _SANDBOX


def stop_sandbox() -> None:
    if _SANDBOX is not None:
        _SANDBOX.proc.stop()


def table(rows: Sequence[JobRow]) -> list[str]:
    lines = [
        "| scheduled job | work | wall time | peak memory | longest lock (tx) | longest statement | target | |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.job} | {r.work} | {r.wall_s:,.2f} s | {r.memory} | {r.watch.longest_tx_ms:,.0f} ms | "
            f"{r.watch.longest_stmt_ms:,.0f} ms | {r.target} | {'met' if r.met else 'NOT met'} |"
        )
    lines.append("")
    lines += [f"longest lock in {r.job}: {r.watch.longest_tx_query or '-'}" for r in rows]
    return lines
