"""The fault suite: deletions keep their promises while workers, Redis and PostgreSQL die.

Real processes (web, two workers, beat, the sandbox) on a PostgreSQL and a Redis of the suite's own,
so restarting them harms nothing else. Merchants ask for deletions over the API while the suite
SIGKILLs workers in the middle of WeChat calls, kills Redis (no persistence: every queued message
is lost) and crash-restarts PostgreSQL, and WeChat (the sandbox) answers a share of the calls with
-1, 45011, 5xx, a hang past the read timeout, HTML, truncated JSON, an empty body or 42001.

The deletion machinery runs at its shipped defaults (lease, heartbeat, sweep, re-send, retries: as
in .env.example). Then the database, the audit log and the sandbox's call log are joined, and every
request must be terminal soon after the last fault (the retry policy's longest backoff + 20 s), with
exactly one terminal transition; no `succeeded` without an errcode 0 for it or the already-gone rule;
no call for an account nobody asked to delete or for an ineligible merchant; at most one token
refresh per authorizer per rejected token.

A second test is issue 17's measurement: a 300-account bulk, two SIGKILLs of the worker in the middle
of its calls, nothing else wrong: every deletion terminal within 20 s of the second kill.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from tests.e2e import harness, servers
from tests.e2e.harness import AUTHORIZER_TOKEN, DEL, Merchant, Stack
from tests.reliability import figures
from wechat.retry import Backoff

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

SIZE = figures.size(
    {"merchants": 20, "per_merchant": 50, "kills": 5, "redis_restarts": 2, "pg_restarts": 1, "window": 60.0},
    {"merchants": 4, "per_merchant": 40, "kills": 2, "redis_restarts": 1, "pg_restarts": 1, "window": 24.0},
)
# Seconds from a worker's SIGKILL to the end of every deletion it stranded, with the shipped defaults
# (lease 8 s after the last heartbeat, a sweep every 2 s, the run again).
RECOVERY_BOUND = 20.0
# From the last fault of the chaos run (a kill, a server restart or a faulted WeChat call, whichever
# came last): a deletion whose last allowed retry met that fault first waits out its backoff (the
# shipped policy's longest, before the 5th transient failure: 16 s), then recovers as above.
LAST_FAULT_BOUND = (
    Backoff(base_seconds=settings.DELETION_RETRY_BASE_SECONDS, cap_seconds=settings.DELETION_RETRY_CAP_SECONDS).ceiling(
        settings.DELETION_MAX_TRANSIENT_FAILURES - 1
    )
    + RECOVERY_BOUND
)
# The waits below give up only when nothing moves for this long (a loaded machine is slow, not stuck).
STALL_SECONDS = 120.0
# Of the kfaccount/del calls during the window; the calls of the recovery after it are healthy, so
# the share over the whole run is lower (it must stay ≥ 10 %).
FAULT_RATE = 0.2
READ_TIMEOUT_MS = 2000
UPSTREAM_FAULTS: list[dict[str, Any]] = [
    {"errcode": -1},
    {"errcode": 45011},
    {"http_status": 502},
    {"http_status": 503},
    {"timeout": True, "seconds": READ_TIMEOUT_MS / 1000 + 1.5},  # a hang past the read timeout
    {"garbage": "html"},
    {"garbage": "truncated"},
    {"garbage": "empty"},
    {"errcode": 42001},
]
# No DELETION_* setting: leases, their heartbeat, the sweep, re-sends and retries are the shipped ones.
# The read timeout only shapes the injected hang (a call held past it), so that fault costs seconds.
SETTINGS = {
    "WECHAT_READ_TIMEOUT_MS": str(READ_TIMEOUT_MS),
    "LOG_FORMAT": "json",
}


@dataclass
class Run:
    stack: Stack
    pg: servers.PostgresServer
    redis: servers.RedisServer
    merchants: list[Merchant]
    refused: list[Merchant]
    wanted: dict[str, list[str]]  # appid -> accounts asked to delete
    seeded: dict[str, list[str]]  # appid -> accounts that exist at WeChat
    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    injected: Counter = field(default_factory=Counter)  # worker kills and server restarts
    fault_times: list[float] = field(default_factory=list)
    kill_times: list[float] = field(default_factory=list)
    submit_retries: int = 0
    broker_messages: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def own_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[servers.PostgresServer, servers.RedisServer]]:
    missing = servers.binaries_missing()
    if missing:
        message = f"FAULT SUITE NOT RUN: missing {', '.join(missing)}"
        if figures.IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    logs = tmp_path_factory.mktemp("servers")
    pg, redis_server = servers.PostgresServer(logs), servers.RedisServer(logs)
    pg.start()
    redis_server.start()
    try:
        yield pg, redis_server
    finally:
        redis_server.stop()
        pg.stop()


def _merchant_accounts(n: int) -> list[str]:
    return [f"k{i:03d}" for i in range(n)]


@pytest.fixture(scope="module")
def run(own_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    pg, redis_server = own_servers
    stack = harness.start_stack(
        tmp_path_factory.mktemp("faults"),
        database_url=pg.url,
        redis_url=redis_server.url,
        settings=SETTINGS,
        workers=2,
        worker_threads=6,
    )
    try:
        per = SIZE["per_merchant"]
        # Each merchant has per+4 accounts at WeChat and asks for per: per-2 of its own and two that
        # do not exist (65401 on a first attempt); 6 of its accounts nobody asks for.
        kf = [*_merchant_accounts(per + 4)]
        with ThreadPoolExecutor(4) as pool:
            merchants = list(pool.map(lambda _: stack.new_merchant(kf=kf), range(SIZE["merchants"])))
            refused = list(
                pool.map(
                    lambda spec: stack.new_merchant(kf=("a", "b"), **spec),
                    [{"certified": False}, {"func": (2, 3)}],  # uncertified; no kf permission set
                )
            )
        wanted, seeded = {}, {}
        for m in merchants:
            seeded[m.appid] = list(m.kf)
            wanted[m.appid] = [*m.kf[: per - 2], f"ghost0@{m.alias}", f"ghost1@{m.alias}"]
        yield Run(stack, pg, redis_server, merchants, refused, wanted, seeded)
    finally:
        harness.stop_stack(stack)


# --------------------------------------------------------------------------------------- driving


def _submit(run: Run, merchant: Merchant, accounts: list[str], stop_at: float) -> None:
    """One API request, retried with its Idempotency-Key until it is accepted (the outages make
    some attempts fail); the ids it returns are the requests' identities."""
    key = uuid.uuid4().hex
    body: dict[str, Any] = {"kf_account": accounts[0]} if len(accounts) == 1 else {"kf_accounts": accounts}
    while True:
        try:
            response = merchant.api.post("/api/v1/deletions/", body, headers={"Idempotency-Key": key})
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 202:
            data = response.json()
            for item in data.get("deletions", [data]) if isinstance(data, dict) else data:
                run.ids[(merchant.appid, item["kf_account"])] = item["id"]
            return
        assert response is None or response.status_code >= 500 or response.status_code == 429, (
            f"a valid deletion request was refused: {response.status_code} {response.text[:300]}"
        )
        run.submit_retries += 1
        assert time.monotonic() < stop_at, f"a deletion request was not accepted in time: {body}"
        time.sleep(0.5)


def _requests_plan(run: Run) -> list[tuple[Merchant, list[str]]]:
    plan: list[tuple[Merchant, list[str]]] = []
    for m in run.merchants:
        accounts = list(run.wanted[m.appid])
        bulk, singles = accounts[:25], accounts[25:]  # a bulk of 25 fans out through one message
        plan.append((m, bulk))
        plan.extend((m, [a]) for a in singles)
    random.Random(11).shuffle(plan)
    return plan


def _wait_progressing(
    check: Callable[[], bool], progress: Callable[[], object], *, what: str, interval: float = 0.5
) -> None:
    """Poll ``check`` until it holds, for as long as ``progress()`` keeps changing: only STALL_SECONDS
    without any change fails (a busy machine slows the run down; it does not stop it)."""
    seen, moved = progress(), time.monotonic()
    while not check():
        now_seen = progress()
        if now_seen != seen:
            seen, moved = now_seen, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            raise AssertionError(
                f"nothing moved for {STALL_SECONDS:.0f}s while waiting for {what}; last: {seen!r:.500}"
            )
        time.sleep(interval)


def _progress(run: Run) -> tuple[int, int]:
    """What moves while deletions are being worked on: WeChat calls made, deletions not yet terminal."""
    return run.stack.sandbox.stats()["total"], _not_terminal(run)


def _not_terminal(run: Run) -> int:
    return run.stack.db.value("SELECT count(*) FROM kfaccounts_deletionrequest WHERE status IN ('pending', 'running')")


def _kill_worker_mid_call(run: Run, key: str) -> None:
    _wait_progressing(
        lambda: sum(run.stack.sandbox.stats()["in_flight"].values()) >= 1,
        lambda: (len(run.ids), _progress(run)),
        what="a delete call in flight at WeChat",
        interval=0.02,
    )
    run.stack.kill_worker(key)
    run.fault_times.append(time.time())
    run.kill_times.append(time.time())
    run.injected["worker SIGKILL"] += 1
    run.stack.start_worker(key, threads=6)


def _timeline(window: float) -> list[tuple[float, str]]:
    events: list[tuple[float, str]] = []
    # All while requests are still coming in (the first 70 % of the window): a fast drain must not
    # leave a kill without a call in flight to interrupt.
    for i in range(SIZE["kills"]):
        events.append((window * (0.05 + 0.6 * i / max(1, SIZE["kills"] - 1)), "kill"))
    for i in range(SIZE["redis_restarts"]):
        events.append((window * (0.2 + 0.35 * i), "redis"))
    for i in range(SIZE["pg_restarts"]):
        events.append((window * (0.4 + 0.2 * i), "postgres"))
    return sorted(events)


def _watch_broker(run: Run, stop: threading.Event) -> None:
    """Every message published to the broker (Redis MONITOR), for the secrets check."""
    import redis

    while not stop.is_set():
        try:
            client = redis.Redis.from_url(run.redis.url, socket_timeout=1)
            with client.monitor() as monitor:
                for command in monitor.listen():
                    text = command.get("command", "")
                    if text.startswith(("LPUSH", "RPUSH", "ZADD", "HSET")):
                        run.broker_messages.append(text)
                    if stop.is_set():
                        return
        except Exception:
            time.sleep(0.2)  # Redis is being restarted


def _drive(run: Run) -> dict[str, float]:
    stack = run.stack
    stack.sandbox.control("POST", "/latency", {"path": DEL, "ms": 300})
    stop_watch = threading.Event()
    watcher = threading.Thread(target=_watch_broker, args=(run, stop_watch), daemon=True)
    watcher.start()
    # WeChat answers this share of the delete calls with one of the faults, at random, until the
    # window ends (the sandbox's chaos mode).
    stack.sandbox.control("POST", "/chaos", {"path": DEL, "rate": FAULT_RATE, "faults": UPSTREAM_FAULTS, "seed": 11})
    started = time.monotonic()

    plan = _requests_plan(run)
    window = SIZE["window"]
    deadline = started + window + 240
    submitting = ThreadPoolExecutor(8)

    def submit_at(when: float, merchant: Merchant, accounts: list[str]) -> None:
        time.sleep(max(0.0, when - time.monotonic()))
        _submit(run, merchant, accounts, deadline)

    futures = [
        submitting.submit(submit_at, started + (window * 0.7) * n / len(plan), merchant, accounts)
        for n, (merchant, accounts) in enumerate(plan)
    ]
    # The ineligible merchants are refused before WeChat.
    for merchant in run.refused:
        response = merchant.api.post("/api/v1/deletions/", {"kf_account": merchant.kf[0]})
        assert response.status_code in (403, 409, 422), (response.status_code, response.text)

    workers = ["worker", "worker2"]
    for n, (at, what) in enumerate(_timeline(window)):
        time.sleep(max(0.0, started + at - time.monotonic()))
        if what == "kill":
            _kill_worker_mid_call(run, workers[n % 2])
        elif what == "redis":
            run.redis.crash_restart()
            run.fault_times.append(time.time())
            run.injected["Redis restart"] += 1
        else:
            run.pg.crash_restart()
            run.fault_times.append(time.time())
            run.injected["PostgreSQL restart"] += 1
    time.sleep(max(0.0, started + window - time.monotonic()))
    stack.sandbox.control("DELETE", "/chaos")
    for future in futures:
        future.result(timeout=max(1.0, deadline - time.monotonic()))
    submitting.shutdown()
    stack.sandbox.control("DELETE", "/latency")
    faulted_calls = [c["at"] for c in stack.sandbox.calls(path=DEL) if c["fault"] and c["fault"] != "latency"]
    last_fault = max([*run.fault_times, *faulted_calls])

    # However long it takes: the recovery bound is checked on the timestamps, not by this wait.
    _wait_progressing(lambda: _not_terminal(run) == 0, lambda: _progress(run), what="every deletion to be terminal")
    stop_watch.set()
    finished = stack.db.value("SELECT max(finished_at) FROM kfaccounts_deletionrequest")
    return {
        "last_fault": last_fault,
        "last_kill": max(run.kill_times),
        "last_finished": finished.timestamp(),
        "started": started,
    }


# ------------------------------------------------------------------------------------------- proof


def test_no_deletion_is_lost_duplicated_or_unasked_under_worker_broker_database_and_upstream_faults(run: Run) -> None:
    stack, db, sandbox = run.stack, run.stack.db, run.stack.sandbox
    timing = _drive(run)
    stack.check_alive()

    rows = db.rows(
        "SELECT d.id, a.appid, d.kf_account, d.status, d.reason, d.errcode, d.attempts, d.outcome_unknown "
        "FROM kfaccounts_deletionrequest d JOIN authorizers_authorizer a ON a.id = d.authorizer_id"
    )
    by_id = {r[0]: r for r in rows}
    calls = sandbox.calls(path=DEL)
    calls_by_account: dict[tuple[str, str | None], list[dict]] = defaultdict(list)
    for call in calls:
        account = (call["body"] or {}).get("kf_account") if isinstance(call["body"], dict) else None
        calls_by_account[(call["authorizer_appid"], account)].append(call)
    for its in calls_by_account.values():
        # The log is in order of completion; a call held up (a hang, a worker killed mid-call) ends
        # after its retry. What happened first is what started first.
        its.sort(key=lambda c: c["at"])
    terminal_events = Counter(
        int(deletion_id)
        for (deletion_id,) in db.rows(
            "SELECT detail->>'deletion_id' FROM audit_auditevent "
            "WHERE action IN ('deletion.succeeded', 'deletion.failed', 'deletion.rejected')"
        )
    )

    asked = {(appid, a) for appid, accounts in run.wanted.items() for a in accounts}
    lost = sorted(asked - set(run.ids))
    assert not lost, f"requests without a deletion: {lost[:10]}"
    rows_per_account = Counter((r[1], r[2]) for r in rows)
    duplicated = sorted(k for k, n in rows_per_account.items() if n > 1)
    assert not duplicated, f"more than one deletion for: {duplicated[:10]}"
    assert set(by_id) == set(run.ids.values())
    not_terminal = [r for r in rows if r[3] in ("pending", "running")]
    assert not not_terminal, not_terminal[:10]
    recovery = timing["last_finished"] - timing["last_fault"]
    after_kill = timing["last_finished"] - timing["last_kill"]
    assert recovery <= LAST_FAULT_BOUND, f"the last deletion ended {recovery:.1f}s after the last fault"
    # The work the SIGKILLs stranded: deletions whose lease the sweeper took back, each from the kill
    # before it to its end (heartbeat stopped, lease ran out, swept, re-sent, run again). A batch
    # that a PostgreSQL restart broke mid-way is recovered the same way and counts here too.
    killed_work = []
    for deletion_id, expired_at, finished_at in db.rows(
        "SELECT d.id, e.at, d.finished_at FROM audit_auditevent e "
        "JOIN kfaccounts_deletionrequest d ON d.id = (e.detail->>'deletion_id')::int "
        "WHERE e.action = 'deletion.lease_expired'"
    ):
        kills = [k for k in run.kill_times if k <= expired_at.timestamp()]
        if kills:
            killed_work.append((finished_at.timestamp() - max(kills), deletion_id))
    # (Not bounded: upstream faults go on after the kills, and a stranded deletion that meets them on
    # its next attempt waits out their backoff too. The bound is on the run's last fault, above, and
    # on a bulk with nothing but two kills, below.)
    assert killed_work, "no deletion was stranded by a SIGKILL: the kills missed every call"
    slowest_kill_recovery = max(killed_work)[0]

    transitions_wrong = {i: terminal_events.get(i, 0) for i in by_id if terminal_events.get(i, 0) != 1}
    assert not transitions_wrong, (
        f"deletions without exactly one terminal transition: {list(transitions_wrong.items())[:10]}"
    )

    problems = []
    for deletion_id, appid, account, status, reason, _errcode, _attempts, outcome_unknown in rows:
        its_calls = calls_by_account.get((appid, account), [])
        exists = account in run.seeded[appid]
        if status == "succeeded" and reason == "":
            if not any(c["errcode"] == 0 and c["fault"] in (None, "latency") for c in its_calls):
                problems.append(f"#{deletion_id} succeeded without an errcode 0 from WeChat")
        elif status == "succeeded":
            # The design's rule: 65401 after an attempt whose outcome is unknown means gone. (For an
            # account that never existed that reads `succeeded` too: WeChat cannot tell them apart.)
            first_65401 = next((n for n, c in enumerate(its_calls) if c["errcode"] == 65401), None)
            if reason != "already_gone" or not outcome_unknown or first_65401 is None:
                problems.append(f"#{deletion_id} succeeded {reason} outside the already-gone rule")
            elif first_65401 == 0 and exists:
                # Our first call found an existing account gone: something else deleted it.
                problems.append(f"#{deletion_id} {account} was gone before its first call")
        elif reason == "invalid_kf_account" and exists:
            problems.append(f"#{deletion_id} {account} exists but failed invalid_kf_account")
        if status == "succeeded" and account in sandbox.kf_accounts(appid):
            problems.append(f"#{deletion_id} succeeded but {account} still exists at WeChat")
    assert not problems, problems[:20]

    unasked = [(k, len(v)) for k, v in calls_by_account.items() if k not in asked]
    assert not unasked, f"kfaccount/del for accounts nobody asked to delete: {unasked[:10]}"
    for m in run.merchants:
        left = set(sandbox.kf_accounts(m.appid))
        untouched = set(run.seeded[m.appid]) - set(run.wanted[m.appid])
        assert untouched <= left, f"{m.appid}: accounts nobody asked for were deleted: {untouched - left}"
    for m in run.refused:
        assert not sandbox.calls(path=DEL, appid=m.appid), f"kfaccount/del for ineligible {m.appid}"

    # Token refreshes: one per token WeChat rejected (42001 and friends), however many threads saw it.
    all_calls = sandbox.calls()
    rejected_tokens: dict[str, set[str]] = defaultdict(set)
    refreshes: Counter = Counter()
    for call in all_calls:
        appid = call["authorizer_appid"]
        if call["path"] == AUTHORIZER_TOKEN and call["errcode"] == 0:
            refreshes[appid] += 1
        elif call["errcode"] in (40001, 40014, 42001) and call["query"].get("access_token"):
            rejected_tokens[appid].add(call["query"]["access_token"])
    extra_refreshes = {a: (n, len(rejected_tokens[a])) for a, n in refreshes.items() if n > len(rejected_tokens[a])}
    assert not extra_refreshes, f"more token refreshes than rejected tokens (refreshes, rejected): {extra_refreshes}"

    faulted = [c for c in calls if c["fault"] and c["fault"] != "latency"]
    share = len(faulted) / max(1, len(calls))
    assert share >= 0.10, f"only {share:.1%} of kfaccount/del calls were faulted"
    assert run.injected["worker SIGKILL"] >= SIZE["kills"]
    assert run.injected["Redis restart"] >= SIZE["redis_restarts"]
    assert run.injected["PostgreSQL restart"] >= SIZE["pg_restarts"]

    outcomes = Counter(f"{r[3]} {r[4] or ''}".strip() for r in rows)
    fault_kinds = Counter(c["fault"].split(":")[0] + ":" + c["fault"].split(":")[1] for c in faulted)
    figures.record(
        "faults",
        requests=len(run.ids),
        merchants=f"{len(run.merchants)} (+{len(run.refused)} ineligible, refused)",
        terminal=len(rows) - len(not_terminal),
        lost=len(lost),
        duplicated=len(duplicated),
        terminal_transitions_not_one=len(transitions_wrong),
        **{f"outcome {k}": v for k, v in sorted(outcomes.items())},
        worker_sigkills=run.injected["worker SIGKILL"],
        redis_restarts=run.injected["Redis restart"],
        postgres_restarts=run.injected["PostgreSQL restart"],
        del_calls=len(calls),
        upstream_faulted_calls=f"{len(faulted)} ({share:.1%})",
        **{f"upstream {k}": v for k, v in sorted(fault_kinds.items())},
        token_refreshes=sum(refreshes.values()),
        rejected_tokens=sum(len(v) for v in rejected_tokens.values()),
        api_submit_retries=run.submit_retries,
        recovery_after_last_fault=f"{recovery:.1f} s (bound {LAST_FAULT_BOUND:.0f} s)",
        stranded_by_sigkills=(
            f"{len(killed_work)} deletions, terminal {sorted(killed_work)[len(killed_work) // 2][0]:.1f} s (median), "
            f"≤ {slowest_kill_recovery:.1f} s after their kill"
        ),
        all_terminal_after_last_sigkill=f"{after_kill:.1f} s (faults went on after it)",
    )
    run_secrets_check(run)


def test_a_bulk_is_terminal_within_20_s_of_the_last_of_two_worker_sigkills(run: Run) -> None:
    """Issue 17's measurement, with the shipped defaults: a 300-account bulk, two worker SIGKILLs in
    the middle of its WeChat calls (the worker restarted after each), nothing else going wrong.

    One deletion worker runs, so each kill surely hits the process making the calls (with two, the
    one killed might be the idle one)."""
    stack, db = run.stack, run.stack.db
    idle = stack.procs.pop("worker2")
    idle.stop(timeout=60)  # a warm shutdown: it finishes what it runs
    stack.retired.append(idle)
    merchant = stack.new_merchant(kf=_merchant_accounts(300))
    stack.sandbox.control("POST", "/latency", {"path": DEL, "ms": 300})  # as in the run above: calls to kill
    kills: list[float] = []
    try:
        response = merchant.api.post("/api/v1/deletions/", {"kf_accounts": list(merchant.kf)})
        assert response.status_code == 202, response.text
        ids = [d["id"] for d in response.json()["deletions"]]
        assert len(ids) == 300

        def left() -> int:
            return db.value(
                "SELECT count(*) FROM kfaccounts_deletionrequest WHERE id = ANY(%s) "
                "AND status IN ('pending', 'running')",
                ids,
            )

        for n in (1, 2):
            _wait_progressing(
                lambda: run.stack.sandbox.stats()["in_flight"].get(merchant.appid, 0) >= 1,
                left,
                what=f"a delete call of the bulk in flight before SIGKILL {n}",
                interval=0.02,
            )
            stack.kill_worker("worker")
            kills.append(time.time())
            stack.start_worker("worker", threads=6)
        _wait_progressing(lambda: left() == 0, lambda: (left(), stack.sandbox.stats()["total"]), what="the bulk")
    finally:
        stack.sandbox.control("DELETE", "/latency")
    stack.check_alive()

    outcomes = Counter(
        status for (status,) in db.rows("SELECT status FROM kfaccounts_deletionrequest WHERE id = ANY(%s)", ids)
    )
    assert outcomes == {"succeeded": 300}, outcomes
    terminal = Counter(
        int(deletion_id)
        for (deletion_id,) in db.rows(
            "SELECT detail->>'deletion_id' FROM audit_auditevent WHERE action = 'deletion.succeeded' "
            "AND authorizer_appid = %s",
            merchant.appid,
        )
    )
    assert set(terminal) == set(ids) and set(terminal.values()) == {1}
    stranded = db.value(
        "SELECT count(*) FROM audit_auditevent WHERE action = 'deletion.lease_expired' AND authorizer_appid = %s",
        merchant.appid,
    )
    assert stranded >= 2, f"the kills stranded {stranded} deletions: they did not hit calls in flight"
    last_finished = db.value("SELECT max(finished_at) FROM kfaccounts_deletionrequest WHERE id = ANY(%s)", ids)
    recovery = last_finished.timestamp() - kills[-1]
    assert recovery <= RECOVERY_BOUND, f"the bulk's last deletion ended {recovery:.1f}s after the second SIGKILL"
    figures.record(
        "faults",
        bulk_with_two_sigkills=(
            f"300 deletions, {stranded} stranded mid-call, all terminal {recovery:.1f} s after the second kill "
            f"(bound {RECOVERY_BOUND:.0f} s)"
        ),
    )


def run_secrets_check(run: Run) -> None:
    """No secret the run produced in a log line, a broker message or a dump of the database."""
    from tests.reliability.secrets_scan import collect_run_secrets, scan_run

    secrets_found = collect_run_secrets(run.stack, run.merchants + run.refused)
    leaks = scan_run(run.stack, run.pg, secrets_found, run.broker_messages, Path(run.stack.tmp))
    figures.record(
        "secrets",
        secrets_tracked=len(secrets_found),
        log_lines_scanned=leaks.log_lines,
        json_log_lines=leaks.json_lines,
        broker_messages_scanned=len(run.broker_messages),
        dump_bytes_scanned=leaks.dump_bytes,
        leaks=len(leaks.found),
    )
    assert not leaks.found, leaks.found[:10]
    assert leaks.non_json == [], f"LOG_FORMAT=json but lines that are not JSON objects: {leaks.non_json[:5]}"
