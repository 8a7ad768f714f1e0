"""The processes the service benchmark measures, started as production runs them.

PostgreSQL (a database of the bench's own, created and dropped here), Redis (one database for the
cache and the rate limits, one for the broker, both flushed), the sandbox with a standing latency,
gunicorn, Celery worker(s) and beat. Configuration comes from the environment:

    BENCH_POSTGRES_URL   a PostgreSQL URL the bench may CREATE DATABASE with (default postgres://postgres@127.0.0.1:5432/postgres)
    BENCH_DB_PREFIX      the bench database is named <prefix>_<random> (default kfbench)
    BENCH_REDIS_URL      the Redis server (default redis://127.0.0.1:6379)
    BENCH_REDIS_DBS      two database numbers, cache and broker (default 6,7)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devtools import procs
from tests.e2e import harness
from tests.e2e.harness import E2EDatabase, MerchantApi, SandboxClient

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class WorkerLayout:
    """How the deletions are executed: ``processes`` Celery workers, each ``-P threads -c threads``."""

    processes: int = 1
    threads: int = 32

    def describe(self) -> str:
        return f"{self.processes} worker process(es) x {self.threads} threads"


@dataclass
class BenchMerchant:
    appid: str
    alias: str
    authorizer_id: int
    api: MerchantApi


@dataclass
class BenchStack:
    tmp: Path
    db: E2EDatabase
    env: dict[str, str]
    sandbox: SandboxClient
    web_url: str
    sandbox_url: str
    broker_url: str
    cache_url: str
    layout: WorkerLayout
    processes: dict[str, procs.Proc] = field(default_factory=dict)

    # --- processes ------------------------------------------------------------------------------

    def start(self, name: str, argv: list[str]) -> procs.Proc:
        proc = procs.Proc(name, argv, self.env, self.tmp / "logs" / f"{name}.log", cwd=self.tmp).start()
        self.processes[name] = proc
        return proc

    def service_procs(self) -> list[procs.Proc]:
        return [p for name, p in self.processes.items() if name != "sandbox"]

    def workers(self) -> list[procs.Proc]:
        return [p for name, p in self.processes.items() if name.startswith("worker")]

    def cpu_seconds(self, which: Sequence[procs.Proc] | None = None) -> float:
        """utime+stime (and reaped children's) of every process in the groups of the service's processes."""
        groups = {p.popen.pid for p in (which or self.service_procs()) if p.popen is not None}
        total = 0
        for stat in _proc_stats():
            if stat["pgrp"] in groups:
                total += stat["utime"] + stat["stime"] + stat["cutime"] + stat["cstime"]
        return total / CLK_TCK

    def rss_mb(self, which: Sequence[procs.Proc]) -> float:
        groups = {p.popen.pid for p in which if p.popen is not None}
        return sum(s["rss"] for s in _proc_stats() if s["pgrp"] in groups) * PAGE / 1e6

    def add_worker(self) -> procs.Proc:
        """One more Celery worker process of the stack's layout."""
        n = len(self.workers())
        return self.start(
            f"worker{n}",
            procs.celery(
                "worker",
                "-Q",
                "celery",  # deletions only, as docker-compose's workers (no webhook endpoint here)
                "-P",
                "threads",
                "-c",
                str(self.layout.threads),
                "-l",
                "warning",
                "-n",
                f"bench{n}@%h",
                "--without-mingle",
                "--without-gossip",
            ),
        )

    def wait_workers_ready(self) -> None:
        """Until every worker answers a ping over the broker (it is consuming)."""
        import socket
        import subprocess
        from functools import partial

        def answers(name: str) -> bool:
            done = subprocess.run(
                procs.celery("inspect", "ping", "-d", name, "-t", "2"),
                env=self.env,
                cwd=self.tmp,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
            return done.returncode == 0

        for n in range(len(self.workers())):
            name = f"bench{n}@{socket.gethostname()}"
            procs.wait_until(partial(answers, name), timeout=180, interval=1, what=f"worker {name} to answer a ping")

    def pause_workers(self, paused: bool) -> None:
        import signal

        for worker in self.workers():
            worker.signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def manage(self, *args: str, timeout: float = 300) -> str:
        import subprocess

        done = subprocess.run(
            procs.manage(*args),
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def stop(self) -> None:
        procs.stop_all(list(self.processes.values()))
        self.db.drop()
        _flush(self.broker_url)
        _flush(self.cache_url)

    # --- merchants -------------------------------------------------------------------------------

    def new_merchants(self, count: int, *, label: str) -> list[BenchMerchant]:
        """Sandbox accounts authorized through the real flow, each with an API key (issued in one process)."""

        def one(n: int) -> tuple[str, str]:
            alias = f"{label}{n:03d}{secrets.token_hex(2)}"
            account = self.sandbox.new_account(
                kind="service", certified=True, kf_enabled=True, alias=alias, nick_name=f"bench {alias}"
            )
            _authorize(self, account["appid"])
            return account["appid"], alias

        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(one, range(count)))
        appids = [appid for appid, _ in made]
        harness.eventually(
            lambda: self.db.value(
                "SELECT count(*) FROM authorizers_authorizer WHERE appid = ANY(%s) AND access_token_ciphertext <> ''",
                appids,
            ),
            lambda n: n == len(appids),
            timeout=120,
            what="every bench merchant to be authorized",
        )
        keys = json.loads(
            self.manage("shell", "-c", f"from bench.inproc import issue_keys; issue_keys({appids!r})").splitlines()[-1]
        )
        ids = dict(self.db.rows("SELECT appid, id FROM authorizers_authorizer WHERE appid = ANY(%s)", appids))
        return [
            BenchMerchant(
                appid=appid, alias=alias, authorizer_id=ids[appid], api=MerchantApi(self.web_url, keys[appid])
            )
            for appid, alias in made
        ]

    def seed(self, merchant: BenchMerchant, prefix: str, count: int) -> list[str]:
        self.sandbox.control("POST", f"/accounts/{merchant.appid}/kf", {"generate": count, "prefix": prefix})
        return [f"{prefix}{n}@{merchant.alias}" for n in range(1, count + 1)]

    def access_tokens(self, merchants: Sequence[BenchMerchant]) -> dict[str, str]:
        """The platform's current tokens, read the way the service reads them (for the bare baseline)."""
        ids = [m.authorizer_id for m in merchants]
        out = self.manage("shell", "-c", f"from bench.inproc import access_tokens; access_tokens({ids!r})")
        by_id = json.loads(out.splitlines()[-1])
        return {m.appid: by_id[str(m.authorizer_id)] for m in merchants}

    def sdk_credentials(self, merchant: BenchMerchant) -> dict[str, str]:
        out = self.manage(
            "shell", "-c", f"from bench.inproc import sdk_credentials; sdk_credentials({merchant.authorizer_id})"
        )
        return json.loads(out.splitlines()[-1])


def _authorize(stack: BenchStack, appid: str) -> None:
    """The real flow, as tests/e2e/harness.py drives it: the platform's page, WeChat's, the callback."""
    from urllib.parse import parse_qs

    from devtools import authpage

    web = MerchantApi(stack.web_url, None)
    start = web.get("/wechat/authorize/")
    assert start.status_code == 200, start.text[:300]
    link = authpage.page_links(start.text)[authpage.PC_LINK]["href"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    referer = authpage.referer_for(f"{stack.web_url}/wechat/authorize/")
    assert stack.sandbox.http.get(link, headers={"Referer": referer}, timeout=30).status_code == 200
    confirm = stack.sandbox.control(
        "POST",
        "/authorize",
        {
            "appid": appid,
            "func": [1, 6],
            "pre_auth_code": query["pre_auth_code"],
            "redirect_uri": query["redirect_uri"],
            "wait_push": True,
        },
    )
    back = web.http.get(confirm["redirect"], timeout=60, allow_redirects=False)
    assert back.status_code == 200, back.text[:500]


def _proc_stats() -> list[dict[str, int]]:
    stats = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3 of stat(5)); pgrp is field 5, utime 14, stime 15, cutime 16, cstime 17, rss 24
        stats.append(
            {
                "pid": int(entry),
                "pgrp": int(fields[2]),
                "utime": int(fields[11]),
                "stime": int(fields[12]),
                "cutime": int(fields[13]),
                "cstime": int(fields[14]),
                "rss": int(fields[21]),
            }
        )
    return stats


def _redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def start(tmp: Path, *, latency_ms: int, layout: WorkerLayout, extra_env: dict[str, str] | None = None) -> BenchStack:
    import psycopg

    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    prefix = os.environ.get("BENCH_DB_PREFIX", "kfbench")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
    cache_db, broker_db = (int(x) for x in os.environ.get("BENCH_REDIS_DBS", "6,7").split(","))
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = E2EDatabase(
        django_url=urlunsplit(urlsplit(admin_url)._replace(path="/" + name)), postgres_admin_url=admin_url, name=name
    )
    cache_url, broker_url = _redis_db(redis_url, cache_db), _redis_db(redis_url, broker_db)
    _flush(cache_url)
    _flush(broker_url)
    web_port, sandbox_port = procs.free_port(), procs.free_port()
    web_url, sandbox_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sandbox_port}"
    env = harness._session_env(tmp, db, broker_url, cache_url, sandbox_url=sandbox_url, web_url=web_url)
    env.update(
        {
            "PYTHONPATH": str(procs.ROOT),
            "LOG_LEVEL": "WARNING",
            "DELETION_LEASE_SECONDS": "120",
            "DELETION_SWEEP_SECONDS": "30",
            "API_RATE_LIMIT": "1000000/min",
            # The web-throughput scenario leaves thousands of one merchant's deletions pending.
            "DELETION_MAX_PENDING_PER_MERCHANT": "1000000",
            **(extra_env or {}),
        }
    )
    stack = BenchStack(
        tmp=tmp,
        db=db,
        env=env,
        sandbox=SandboxClient(sandbox_url),
        web_url=web_url,
        sandbox_url=sandbox_url,
        broker_url=broker_url,
        cache_url=cache_url,
        layout=layout,
    )
    try:
        stack.manage("migrate", "--noinput")
        stack.start(
            "sandbox",
            procs.manage(
                "wechat_sandbox",
                "--port",
                str(sandbox_port),
                "--platform-url",
                web_url,
                "--quiet",
                "--no-seed",
                "--push-retry-delay",
                "0.2",
            ),
        )
        stack.start(
            "web",
            procs.gunicorn_command(web_port, timeout=120),
        )
        stack.start("beat", procs.celery("beat", "-l", "warning"))
        for _ in range(layout.processes):
            stack.add_worker()
        procs.wait_until(lambda: stack.sandbox.control("GET", "/health")["ok"], timeout=60, what="the sandbox")
        procs.wait_until(lambda: stack_web_ok(stack), timeout=90, what="the web server")
        harness.eventually(
            lambda: [p for p in stack.sandbox.pushes() if p["info_type"] == "component_verify_ticket"],
            lambda pushes: any(p["delivered"] for p in pushes),
            timeout=90,
            what="the first component_verify_ticket push to be accepted",
        )
        if latency_ms:
            stack.sandbox.control("POST", "/latency", {"ms": latency_ms})
        time.sleep(2)  # let the workers connect to the broker
    except BaseException:
        for proc in stack.processes.values():
            print(f"----- {proc.name}\n{proc.tail(30)}")
        stack.stop()
        raise
    return stack


def stack_web_ok(stack: BenchStack) -> bool:
    return MerchantApi(stack.web_url, None).get("/healthz").status_code == 200
