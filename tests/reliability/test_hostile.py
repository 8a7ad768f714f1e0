"""The hostile-merchant suite: one merchant's API key cannot hurt another merchant or the platform.

Real processes (web, two deletion workers, the webhook worker, beat, the sandbox), configured as in
production with the shipped defaults for every limit under test. Merchant B asks for one deletion a
second, first with nothing else going on (the baseline), then while merchant A attacks:

- **regex**: catastrophic patterns (``(?:.*){40}!``, overlapping alternations) through the API, and
  dry runs of the rules that were accepted (a backtracking engine would freeze a worker);
- **drip**: ten webhook endpoints on a receiver that answers ``200 OK`` and then drips one header
  byte every 4.9 s, kept at 30+ deliveries outstanding for the whole attack (the overall deadline,
  the in-flight caps and the webhook worker's own queue are what protect B);
- **DNS**: endpoint changes to a name whose name server (``WEBHOOK_DNS_SERVERS``, a UDP socket here
  that never answers) is blackholed, two requests at a time: each holds a web thread at most the
  DNS bound;
- **limits**: rules that raise the blast-radius limits above the platform's (refused: 400).

Asserted: B's p95 time from request to a terminal state ≤ 3 s under attack; the console's login
page and WeChat's events URL keep answering within 1 s (p95; every probe answered); the attacks met
the defences (drip connections cut at the deadline, never more than the cap open, DNS refusals
within the bound and naming no address). Printed: B's latency per window beside the baseline's.
"""

from __future__ import annotations

import copy
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness
from tests.e2e.harness import Merchant, Stack
from tests.reliability import figures
from tests.webhooks.dnsserver import start_blackhole
from tests.webhooks.receiver import DripReceiver, start_drip_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

SIZE = figures.size(
    {"baseline": 60.0, "attack": 120.0, "window": 20.0}, {"baseline": 20.0, "attack": 45.0, "window": 15.0}
)
B_P95_BOUND = 3.0
PROBE_BOUND = 1.0
DRIP_EVERY = 4.9
DRIP_OUTSTANDING = 30  # A's deliveries pending or being sent, kept at least this many during the attack
# Shipped defaults (platform_app/settings.py), asserted against: the suite sets none of these.
DEADLINE = 10.0
DNS_BOUND = 2.0
MAX_PER_MERCHANT = 8
SCHEDULE = {"schedule_kind": "interval", "interval_seconds": 86400}  # never fires during the suite
CATASTROPHIC = ["(?:.*){40}!", "(?:a|aa|@)*!", "(a+)+$", "(?:(?:.*)*)*x", "(.*a){30}"]
# Every attack runs; HOSTILE_SKIP=limits,regex leaves one out while investigating a failure.
SKIP = {a.strip() for a in os.environ.get("HOSTILE_SKIP", "").split(",") if a.strip()}


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Sent:
    at: float  # wall clock, when B sent the request
    deletion_id: int
    phase: str


@dataclass
class Run:
    stack: Stack
    b: Merchant
    a: Merchant
    drip: DripReceiver
    dns_address: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[Sent] = field(default_factory=list)
    probes: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: {"login": [], "events": []})
    dns: list[tuple[int, float, str]] = field(default_factory=list)
    regex: list[tuple[str, int, float]] = field(default_factory=list)
    dry_runs: list[int] = field(default_factory=list)
    limits: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    phase: str = "baseline"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    blackhole = start_blackhole()
    host, port = blackhole.getsockname()
    drip = start_drip_receiver(every=DRIP_EVERY)
    stack = harness.start_stack(
        tmp_path_factory.mktemp("hostile"),
        workers=2,
        settings={"WEBHOOK_DNS_SERVERS": f"{host}:{port}"},
        # The e2e session's stack may still be up (tests/e2e ran first): a broker of our own.
        broker_db=harness.BROKER_REDIS_DB - 1,
    )
    try:
        accounts = int(SIZE["baseline"] + SIZE["attack"]) + 20
        b = stack.new_merchant(kf=[f"b{n:04d}" for n in range(accounts)])
        # 26-character accounts, the length the issue measured the backtracking on.
        a = stack.new_merchant(kf=[f"aaaaaaaaaa{n:02d}" for n in range(12)])
    except BaseException as exc:
        tails = stack.tails()
        harness.stop_stack(stack)
        drip.close()
        blackhole.close()
        pytest.fail(f"the merchants could not be set up: {exc}\n{tails}")
    try:
        yield Run(stack=stack, b=b, a=a, drip=drip, dns_address=f"{host}:{port}")
    finally:
        harness.stop_stack(stack)
        drip.close()
        blackhole.close()


def _loop(run: Run, every: float, body: Callable[[], None], name: str) -> threading.Thread:
    def go() -> None:
        while not run.stop.is_set():
            started = time.monotonic()
            try:
                body()
            except Exception as exc:  # recorded and asserted on: a thread must not die silently
                run.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            run.stop.wait(max(0.0, every - (time.monotonic() - started)))

    thread = threading.Thread(target=go, name=name, daemon=True)
    thread.start()
    return thread


# --- merchant B and the probes ------------------------------------------------------------------


def _b_requests(run: Run) -> Callable[[], None]:
    accounts = iter(run.b.kf)

    def one() -> None:
        at = time.time()
        deletion = run.b.api.request_deletion(next(accounts))
        run.sent.append(Sent(at=at, deletion_id=deletion["id"], phase=run.phase))

    return one


def _probe(run: Run) -> Callable[[], None]:
    web = harness.http_session()

    def one() -> None:
        for name, method, path in (
            ("login", "GET", "/admin/login/"),
            ("events", "POST", f"/wechat/component/events/?timestamp={int(time.time())}&nonce=1&msg_signature=x"),
        ):
            started = time.monotonic()
            response = web.request(method, run.stack.web_url + path, data=b"<xml></xml>", timeout=30)
            assert response.status_code < 500, (path, response.status_code)
            run.probes[name].append((run.phase, time.monotonic() - started))

    return one


# --- merchant A's attacks -----------------------------------------------------------------------


def _drip_endpoints(run: Run) -> list[int]:
    ids = []
    for n in range(10):
        created = run.a.api.post("/api/v1/webhooks/", {"url": f"{run.drip.url}?n={n}", "event_types": []})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def _outstanding(run: Run, db: harness.E2EDatabase | None = None) -> int:
    return (db or run.stack.db).value(
        "SELECT count(*) FROM webhooks_webhookdelivery d JOIN webhooks_webhookendpoint e ON e.id = d.endpoint_id "
        "WHERE e.authorizer_id = %s AND d.status IN ('pending', 'delivering')",
        run.a.authorizer_id,
    )


def _drip_attack(run: Run, endpoints: list[int]) -> Callable[[], None]:
    turn = iter(range(10**9))
    dbs: dict[int, harness.E2EDatabase] = {}  # a connection per thread (SQLite's may not cross threads)

    def one() -> None:
        db = dbs.get(threading.get_ident())
        if db is None:
            db = dbs[threading.get_ident()] = copy.copy(run.stack.db)
            db._conn = None
        for _ in range(max(0, DRIP_OUTSTANDING + 10 - _outstanding(run, db))):
            pinged = run.a.api.post(f"/api/v1/webhooks/{endpoints[next(turn) % len(endpoints)]}/ping/")
            assert pinged.status_code == 202, pinged.text

    return one


def _dns_attack(run: Run, endpoint: int) -> Callable[[], None]:
    def one() -> None:
        started = time.monotonic()
        response = run.a.api.request(
            "PATCH", f"/api/v1/webhooks/{endpoint}/", json={"url": "https://hooks.blackholed.example/kf"}
        )
        message = str(response.json().get("error", {}).get("fields", {}).get("url", ""))
        run.dns.append((response.status_code, time.monotonic() - started, message))

    return one


def _regex_attack(run: Run) -> Callable[[], None]:
    patterns = iter(range(10**9))

    def one() -> None:
        pattern = CATASTROPHIC[next(patterns) % len(CATASTROPHIC)]
        started = time.monotonic()
        created = run.a.api.post(
            "/api/v1/cleanup-rules/",
            {
                "name": f"hostile {time.monotonic_ns()}",
                "mode": "dry_run",
                "pattern": pattern,
                "pattern_kind": "regex",
                **SCHEDULE,
            },
        )
        run.regex.append((pattern, created.status_code, time.monotonic() - started))
        if created.status_code == 201:
            dry = run.a.api.post(f"/api/v1/cleanup-rules/{created.json()['id']}/dry-run/")
            assert dry.status_code in (202, 409), dry.text  # 409: a run of the merchant's is still open
            if dry.status_code == 202:
                run.dry_runs.append(dry.json()["id"])

    return one


def _limits_attack(run: Run) -> Callable[[], None]:
    def one() -> None:
        for raised in ({"max_accounts": 10_000}, {"max_percent": 100}):
            created = run.a.api.post(
                "/api/v1/cleanup-rules/",
                {"name": "everything", "mode": "delete", "pattern": "*", **SCHEDULE, **raised},
            )
            run.limits.append(created.status_code)

    return one


# --- the run ------------------------------------------------------------------------------------


def _terminal_times(run: Run) -> dict[int, tuple[str, datetime | None]]:
    rows = run.stack.db.rows(
        "SELECT id, status, finished_at FROM kfaccounts_deletionrequest WHERE authorizer_id = %s", run.b.authorizer_id
    )
    return {row[0]: (row[1], _aware(row[2])) for row in rows}


def _aware(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace(" ", "T") + ("" if "+" in str(value) else "+00:00"))


def test_one_merchant_attacking_does_not_slow_another_merchants_deletions_or_the_platform(run: Run) -> None:
    run.stack.sandbox.control("POST", "/latency", {"ms": 0})
    threads = [_loop(run, 1.0, _b_requests(run), "merchant B"), _loop(run, 0.5, _probe(run), "probes")]
    time.sleep(SIZE["baseline"])

    endpoints = _drip_endpoints(run)
    drip = _drip_attack(run, endpoints)
    drip()  # primed: 30+ deliveries outstanding before the attack's clock starts
    run.phase = "attack"
    attack_started = time.monotonic()
    threads += [
        _loop(run, 1.0, drip, "drip"),
        _loop(run, 0.5, _dns_attack(run, endpoints[0]), "dns 1"),
        _loop(run, 0.5, _dns_attack(run, endpoints[1]), "dns 2"),
    ]
    if "regex" not in SKIP:
        threads.append(_loop(run, 2.0, _regex_attack(run), "regex"))
    if "limits" not in SKIP:
        threads.append(_loop(run, 5.0, _limits_attack(run), "limits"))
    outstanding_seen = []
    while time.monotonic() - attack_started < SIZE["attack"]:
        time.sleep(2.0)
        outstanding_seen.append(_outstanding(run))
    drip_open_for = time.monotonic() - attack_started
    run.stop.set()
    for thread in threads:
        thread.join(timeout=60)

    # Every one of B's deletions reaches a terminal state; the slow ones are what the p95 is about.
    ids = {s.deletion_id for s in run.sent}
    finished = harness.eventually(
        lambda: _terminal_times(run),
        lambda rows: all(rows.get(i, ("", None))[0] in harness.TERMINAL for i in ids),
        timeout=120,
        what="merchant B's deletions to finish",
    )
    latency: dict[str, list[tuple[float, float]]] = {"baseline": [], "attack": []}
    first = min(s.at for s in run.sent)
    for sent in run.sent:
        status, finished_at = finished[sent.deletion_id]
        assert finished_at is not None, (sent, status)
        latency[sent.phase].append((sent.at - first, finished_at.timestamp() - sent.at))

    window = SIZE["window"]
    lines = ["window        | B p95 no attack | B p95 under attack | B requests (attack)"]
    base = [v for _, v in latency["baseline"]]
    attack_start_at = min(t for t, _ in latency["attack"])
    buckets: dict[int, list[float]] = {}
    for t, v in latency["attack"]:
        buckets.setdefault(int((t - attack_start_at) // window), []).append(v)
    for n, values in sorted(buckets.items()):
        lines.append(
            f"{n * window:>4.0f}-{(n + 1) * window:<4.0f} s   | {_p(base, 0.95):>13.2f} s | {_p(values, 0.95):>16.2f} s |"
            f" {len(values)}"
        )
    under = [v for _, v in latency["attack"]]
    login = [v for phase, v in run.probes["login"] if phase == "attack"]
    events = [v for phase, v in run.probes["events"] if phase == "attack"]
    drip_peak = run.drip.peak
    dns_times = [t for _, t, _ in run.dns]
    print("\nhostile merchant: merchant B's time to a terminal state (request → terminal)\n" + "\n".join(lines))
    print(
        f"baseline p50/p95/max {_p(base, 0.5):.2f}/{_p(base, 0.95):.2f}/{max(base):.2f} s over {len(base)}; "
        f"attack {_p(under, 0.5):.2f}/{_p(under, 0.95):.2f}/{max(under):.2f} s over {len(under)}; "
        f"login p95 {_p(login, 0.95):.3f} s, events p95 {_p(events, 0.95):.3f} s; drip peak {drip_peak} open, "
        f"{run.drip.served} served, outstanding min {min(outstanding_seen)}; DNS {len(run.dns)} refusals, "
        f"max {max(dns_times):.2f} s; regex {len(run.regex)} rules ({len(run.dry_runs)} dry runs); limits {run.limits}"
    )
    figures.record(
        "hostile merchant",
        **{
            "B deletions (baseline / under attack)": f"{len(base)} / {len(under)}",
            "B p95 to terminal: no attack / under attack (bound 3 s)": f"{_p(base, 0.95):.2f} s / {_p(under, 0.95):.2f} s",
            "login page / events URL p95 under attack (bound 1 s)": f"{_p(login, 0.95):.3f} s / {_p(events, 0.95):.3f} s",
            "drip: held open / deliveries outstanding (min) / peak open connections (cap)": (
                f"{drip_open_for:.0f} s / {min(outstanding_seen)} / {drip_peak} ({MAX_PER_MERCHANT})"
            ),
            "blackholed DNS: refusals / slowest answer (bound 2 s)": f"{len(run.dns)} / {max(dns_times):.2f} s",
            "catastrophic regex: rules tried / dry runs": (
                "skipped (HOSTILE_SKIP)" if "regex" in SKIP else f"{len(run.regex)} / {len(run.dry_runs)}"
            ),
            "raised limits: attempts / refused": (
                "skipped (HOSTILE_SKIP)" if "limits" in SKIP else f"{len(run.limits)} / {run.limits.count(400)}"
            ),
        },
    )

    assert not run.errors, run.errors[:10]
    assert len(base) >= SIZE["baseline"] * 0.8 and len(under) >= SIZE["attack"] * 0.8
    assert {finished[s.deletion_id][0] for s in run.sent} == {"succeeded"}
    assert _p(under, 0.95) <= B_P95_BOUND, "\n".join(lines)
    # The console and WeChat's events URL: every probe answered, 95 % within the second.
    assert login and events
    assert _p(login, 0.95) <= PROBE_BOUND and _p(events, 0.95) <= PROBE_BOUND, (login, events)
    # The drip was held open the whole attack with 30+ deliveries outstanding, and met the defences.
    assert drip_open_for >= SIZE["attack"] and min(outstanding_seen) >= DRIP_OUTSTANDING, outstanding_seen
    assert 0 < drip_peak <= MAX_PER_MERCHANT
    assert run.drip.served >= drip_open_for / DEADLINE  # connections were cut and retried, not held
    assert run.dns and all(status == 400 for status, _, _ in run.dns)
    assert max(dns_times) <= DNS_BOUND + 1.5, max(dns_times)
    assert all("does not resolve to a public address" in message for _, _, message in run.dns)
    if "regex" not in SKIP:
        assert run.regex and all(status in (201, 400) and spent < 2.0 for _, status, spent in run.regex), run.regex
        runs = harness.eventually(
            lambda: [run.a.api.get(f"/api/v1/cleanup-runs/{i}/").json()["status"] for i in run.dry_runs],
            lambda statuses: all(s not in ("pending", "running") for s in statuses),
            timeout=60,
            what="merchant A's dry runs to finish",
        )
        assert run.dry_runs and set(runs) <= {"previewed", "failed"}, runs  # a preview, or stopped by the work cap
    if "limits" not in SKIP:
        assert run.limits and set(run.limits) == {400}, run.limits
    with Path(run.stack.tmp / "hostile.txt").open("w") as out:
        out.write("\n".join(lines))
    assert statistics.mean(base) > 0
