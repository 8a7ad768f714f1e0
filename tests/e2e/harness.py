"""The end-to-end harness: the real processes, started once per session and driven over HTTP.

A session gets, in a temporary directory of its own:
- a database of its own: ``kfplatform_e2e_<random>`` on the PostgreSQL server that DATABASE_URL
  names (dropped at the end), else a SQLite file; migrated by ``manage.py migrate`` in a subprocess;
- a broker of its own: Redis database 14 on the server that REDIS_URL names (flushed first; the
  cache stays on REDIS_URL under a session key prefix), else Celery's filesystem broker;
- the WeChat sandbox, the web app (gunicorn), Celery workers (thread pool: one on the default queue, one on
  the `webhooks` queue, as docker-compose runs them) and beat, configured as
  in production (DJANGO_DEBUG=false), from the environment only, with credentials and keys made up
  for this session.

Tests see the processes as merchants and WeChat do: the merchant API over HTTP, the sandbox's
control API and call log. Where a test must look at the database (a plaintext scan, a token made
stale) it uses its own connection (`E2EDatabase`), never pytest-django's test database.

conftest.py turns this into fixtures; tests import the helpers from here.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import secrets
import shutil
import sqlite3
import string
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests

from devtools import authpage, procs
from devtools.procs import Proc

T = TypeVar("T")

# Leases, heartbeats and sweeps run at their shipped defaults (a killed worker's deletions come back
# within seconds); only the retry backoff is shortened for the end-to-end tests (E2E_SETTINGS), and
# the fault suite does not shorten even that.
E2E_SETTINGS = {"DELETION_RETRY_BASE_MS": "200", "DELETION_MAX_TRANSIENT_FAILURES": "5"}
WORKER_THREADS = 8
WEBHOOK_RETRY_BASE_MS = 300
# Its own Redis database for the broker (flushed at start); E2E_BROKER_REDIS_DB lets two suites share
# one Redis server without flushing each other.
BROKER_REDIS_DB = int(os.environ.get("E2E_BROKER_REDIS_DB", "14"))
DEL = "/customservice/kfaccount/del"
AUTHORIZER_TOKEN = "/cgi-bin/component/api_authorizer_token"
TERMINAL = ("succeeded", "failed", "rejected")

# Inherited settings that must not leak into the session's processes: they get exactly ours.
_OWN_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "CELERY_",
    "REDIS_",
    "WECHAT_",
    "SANDBOX_",
    "DELETION_",
    "FIELD_ENCRYPTION_",
    "KFPLATFORM_",
    "API_RATE_",
    "CACHE_",
    "PUBLIC_BASE_URL",
    "LOG_LEVEL",
    "WEBHOOK_",
    "CLEANUP_",
    "VERIFY_TICKET_",
    "AUDIT_RETENTION_",
    "KF_RESYNC_",
    "LOG_FORMAT",
    "METRICS_",
    "PROMETHEUS_",
)
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never through a proxy: everything here is on 127.0.0.1
    return session


def eventually(
    fetch: Callable[[], T], until: Callable[[T], bool], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll ``fetch`` until ``until`` holds for its value; on the deadline fail showing the last value."""
    last: list[Any] = []

    def check() -> bool:
        value = fetch()
        last[:] = [value]
        return until(value)

    try:
        procs.wait_until(check, timeout=timeout, interval=interval, what=what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last seen: {last[0] if last else '(nothing)'!r:.2000}") from None
    return last[0]


# ------------------------------------------------------------------------------------------- database


class E2EDatabase:
    """The session's own database, and a connection of the test's own to read (and age) rows."""

    def __init__(
        self, *, django_url: str, postgres_admin_url: str | None = None, sqlite_path: Path | None = None, name: str = ""
    ) -> None:
        self.django_url = django_url
        self.postgres_admin_url = postgres_admin_url
        self.sqlite_path = sqlite_path
        self.name = name
        self._conn: Any = None

    @property
    def is_postgres(self) -> bool:
        return self.postgres_admin_url is not None

    @classmethod
    def create(cls, tmp: Path, database_url: str | None) -> E2EDatabase:
        if database_url and database_url.split("://", 1)[0] in ("postgres", "postgresql", "pgsql"):
            import psycopg

            name = f"kfplatform_e2e_{secrets.token_hex(4)}"
            admin_url = database_url.replace("pgsql://", "postgresql://", 1)
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            parts = urlsplit(admin_url)
            return cls(django_url=urlunsplit(parts._replace(path="/" + name)), postgres_admin_url=admin_url, name=name)
        path = tmp / "e2e.sqlite3"
        return cls(django_url=f"sqlite:///{path}", sqlite_path=path, name=str(path))

    def connection(self) -> Any:
        if self._conn is None:
            if self.is_postgres:
                import psycopg

                self._conn = psycopg.connect(self.django_url, autocommit=True)
            else:
                assert self.sqlite_path is not None
                self._conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
        return self._conn

    def _sql(self, sql: str) -> str:
        return sql if self.is_postgres else sql.replace("%s", "?")

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        try:
            cursor = self.connection().execute(self._sql(sql), params)
        except Exception:
            if not self.is_postgres:
                raise
            # The server was restarted under us (the fault suite does that): one new connection.
            self.close()
            cursor = self.connection().execute(self._sql(sql), params)
        return list(cursor.fetchall())

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.rows(sql, *params)
        return rows[0][0] if rows else None

    def execute(self, sql: str, *params: Any) -> int:
        return self.connection().execute(self._sql(sql), params).rowcount

    def authorizer_id(self, appid: str) -> int | None:
        return self.value("SELECT id FROM authorizers_authorizer WHERE appid = %s", appid)

    def make_access_token_stale(self, authorizer_id: int) -> None:
        """What two hours of waiting would do: the stored token's expiry is in the past."""
        past = "now() - interval '1 hour'" if self.is_postgres else "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')"
        assert (
            self.execute(
                f"UPDATE authorizers_authorizer SET access_token_expires_at = {past} WHERE id = %s", authorizer_id
            )
            == 1
        )

    def text_cells(self) -> Iterator[tuple[str, str, str]]:
        """(table, column, value) for every text-like value in every table."""
        if self.is_postgres:
            columns = self.rows(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb') "
                "ORDER BY table_name, ordinal_position"
            )
            for table, column in columns:
                for (value,) in self.rows(f'SELECT "{column}"::text FROM "{table}" WHERE "{column}" IS NOT NULL'):
                    yield table, column, value
            return
        tables = [t for (t,) in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in self.rows(f'PRAGMA table_info("{table}")')]:
                for (value,) in self.rows(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        yield table, column, value

    def table_count(self) -> int:
        if self.is_postgres:
            return self.value("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        return self.value("SELECT count(*) FROM sqlite_master WHERE type = 'table'")

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.postgres_admin_url is not None:
            import psycopg

            with psycopg.connect(self.postgres_admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -------------------------------------------------------------------------------------------- sandbox


class SandboxClient:
    """The sandbox's control API (/sandbox/…): what WeChat received, and how it should misbehave."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = http_session()

    def control(self, method: str, endpoint: str, json_body: Any = None, **params: Any) -> Any:
        response = self.http.request(method, f"{self.url}/sandbox{endpoint}", json=json_body, params=params, timeout=30)
        assert response.status_code < 300, f"sandbox {method} {endpoint}: {response.status_code} {response.text}"
        return response.json()

    def mark(self) -> int:
        """The sequence number of the last call so far: ``calls(since=mark)`` is what came after."""
        return self.control("GET", "/calls", limit=1)["last_seq"]

    def calls(self, *, path: str | None = None, appid: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if path:
            params["path"] = path
        calls = self.control("GET", "/calls", **params)["calls"]
        return [c for c in calls if appid is None or c["authorizer_appid"] == appid]

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "/stats")

    def pushes(self, since: int = 0) -> list[dict[str, Any]]:
        return self.control("GET", "/pushes", since=since)["pushes"]

    def new_account(self, *, kind: str, certified: bool, kf_enabled: bool, alias: str, nick_name: str) -> dict:
        return self.control(
            "POST",
            "/accounts",
            {"nick_name": nick_name, "kind": kind, "certified": certified, "kf_enabled": kf_enabled, "alias": alias},
        )

    def seed_kf(self, appid: str, accounts: Sequence[str]) -> None:
        self.control("POST", f"/accounts/{appid}/kf", {"kf_accounts": [{"kf_account": a} for a in accounts]})

    def kf_accounts(self, appid: str) -> list[str]:
        return [item["kf_account"] for item in self.control("GET", f"/accounts/{appid}/kf")["kf_list"]]

    def fault(self, **spec: Any) -> None:
        self.control("POST", "/faults", spec)


# ------------------------------------------------------------------------------------------- merchant


class MerchantApi:
    """The merchant REST API with one API key."""

    def __init__(self, base: str, key: str | None) -> None:
        self.base = base
        self.http = http_session()
        if key is not None:
            self.http.headers["Authorization"] = f"Api-Key {key}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=30, allow_redirects=False, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def authorizer(self) -> dict[str, Any]:
        response = self.get("/api/v1/authorizer/")
        assert response.status_code == 200, response.text
        return response.json()

    def deletion(self, deletion_id: int) -> dict[str, Any]:
        response = self.get(f"/api/v1/deletions/{deletion_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def request_deletion(self, kf_account: str) -> dict[str, Any]:
        response = self.post("/api/v1/deletions/", {"kf_account": kf_account})
        assert response.status_code == 202, response.text
        return response.json()

    def wait_deletion(
        self, deletion_id: int, until: Callable[[dict], bool] | None = None, *, timeout: float = 30, what: str = ""
    ) -> dict[str, Any]:
        return eventually(
            lambda: self.deletion(deletion_id),
            until or (lambda d: d["status"] in TERMINAL),
            timeout=timeout,
            what=what or f"deletion {deletion_id} to end",
        )

    def all_deletions(self, **params: Any) -> list[dict[str, Any]]:
        """Every page of GET /api/v1/deletions/ (cursor pagination)."""
        found, url = [], self.base + "/api/v1/deletions/"
        while url:
            response = self.http.get(url, params=params if url.endswith("/deletions/") else None, timeout=30)
            assert response.status_code == 200, response.text
            page = response.json()
            found.extend(page["results"])
            url = page["next"]
        return found


@dataclass
class Merchant:
    appid: str
    alias: str
    authorizer_id: int
    api: MerchantApi
    kf: list[str]
    key: str | None = None
    authorization: dict[str, Any] = field(default_factory=dict)  # the sandbox's answer to the confirm

    def account(self, prefix: str) -> str:
        return f"{prefix}@{self.alias}"


# ---------------------------------------------------------------------------------------------- stack


def _alnum(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def _aes_key() -> str:
    return _alnum(43)  # EncodingAESKey: 43 characters of [A-Za-z0-9]


def _field_keys() -> str:
    return "e2e1:" + base64.b64encode(os.urandom(32)).decode("ascii")


def _redis_db_url(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class ManageCommand:
    """A ``manage.py`` subprocess started in the background."""

    args: tuple[str, ...]
    popen: subprocess.Popen

    def result(self, timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            out, err = self.popen.communicate(timeout=timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
        assert self.popen.returncode == 0, f"manage.py {' '.join(self.args)} failed:\n{out}\n{err}"
        return subprocess.CompletedProcess(self.popen.args, self.popen.returncode, out, err)


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    db: E2EDatabase
    web_url: str
    sandbox_url: str
    sandbox: SandboxClient
    broker_url: str
    procs: dict[str, Proc] = field(default_factory=dict)
    retired: list[Proc] = field(default_factory=list)
    _workers: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def web(self) -> MerchantApi:
        return MerchantApi(self.web_url, None)

    # --- processes --------------------------------------------------------------------------

    def _proc(self, name: str, argv: list[str]) -> Proc:
        return Proc(name, argv, self.env, self.tmp / "logs" / f"{name}.log", cwd=self.tmp)

    def start(self, name: str, argv: list[str]) -> Proc:
        proc = self._proc(name, argv).start()
        self.procs[name.split("-")[0]] = proc
        return proc

    def start_worker(self, key: str = "worker", threads: int = WORKER_THREADS, queue: str = "celery") -> Proc:
        """A Celery worker (thread pool) under ``key`` in ``procs``: several may run side by side.
        As in docker-compose.yml, each consumes one queue: ``celery`` (deletions, syncs) or
        ``webhooks`` (deliveries, the ``webhooks`` worker every stack has)."""
        n = next(self._workers)
        worker = self._proc(
            f"worker-{n}",
            procs.celery(
                "worker",
                "-Q",
                queue,
                "-P",
                "threads",
                "-c",
                str(threads),
                "-l",
                "info",
                "-n",
                f"e2e{n}@%h",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ),
        ).start()
        self.procs[key] = worker
        log_path = worker.log_path
        assert log_path is not None, "workers log to a file"
        eventually(
            lambda: log_path.read_text(errors="replace") if log_path.exists() else "",
            lambda text: " ready." in text or not worker.alive,
            timeout=60,
            what="the worker to be ready",
        )
        assert worker.alive, f"the worker exited:\n{worker.tail()}"
        return worker

    def kill_worker(self, key: str = "worker") -> None:
        """SIGKILL the worker's process group, as a crash or the OOM killer would."""
        worker = self.procs.pop(key)
        worker.kill()
        self.retired.append(worker)

    def stop_worker(self) -> None:
        """A warm shutdown (SIGTERM): the worker finishes what it runs and exits."""
        worker = self.procs.pop("worker")
        worker.stop(timeout=30)
        self.retired.append(worker)

    def stop(self) -> None:
        procs.stop_all(list(self.procs.values()))

    def check_alive(self) -> None:
        dead = [name for name, proc in self.procs.items() if not proc.alive]
        assert not dead, f"{', '.join(dead)} stopped unexpectedly\n{self.tails()}"

    def tails(self, lines: int = 60) -> str:
        out = []
        for proc in [*self.retired, *self.procs.values()]:
            out.append(f"----- {proc.name} ({proc.log_path}), last {lines} lines -----\n{proc.tail(lines)}")
        return "\n".join(out)

    def sweeps_done(self) -> int:
        """How many sweeper runs the workers finished (from their logs)."""
        pattern = re.compile(r"Task kfaccounts\.tasks\.sweep_deletions\[[^\]]+\] succeeded")
        total = 0
        for proc in [*self.retired, *([self.procs["worker"]] if "worker" in self.procs else [])]:
            if proc.log_path and proc.log_path.exists():
                total += len(pattern.findall(proc.log_path.read_text(errors="replace")))
        return total

    def wait_for_sweeps(self, count: int = 2) -> None:
        """Let the sweeper run ``count`` more times: whatever it would re-send has then been re-sent."""
        start = self.sweeps_done()
        eventually(
            self.sweeps_done,
            lambda n: n >= start + count,
            timeout=60 + 10 * count,  # generous: a loaded machine delays beat and the workers
            what=f"{count} more sweeper runs",
            interval=0.2,
        )

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.manage_async(*args).result(timeout)

    def manage_async(self, *args: str) -> ManageCommand:
        popen = subprocess.Popen(
            procs.manage(*args),
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        return ManageCommand(args, popen)

    # --- merchants ----------------------------------------------------------------------------

    def authorize(
        self, appid: str, func: Sequence[int], *, follow_redirect: bool = True, settle: bool = True
    ) -> dict[str, Any]:
        """The real flow: the platform's /wechat/authorize/ → WeChat's page → back to the callback.

        The sandbox delivers the authorization push before it answers; with ``follow_redirect``
        False only that push tells the platform (as when the browser never comes back).
        """
        start = self.web.get("/wechat/authorize/")
        assert start.status_code == 200, f"/wechat/authorize/ answered {start.status_code}: {start.text[:500]}"
        assert start.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        link = authpage.page_links(start.text)[authpage.PC_LINK]
        assert link["referrerpolicy"] == "strict-origin-when-cross-origin"
        location = urlsplit(link["href"])
        login_page = f"{location.scheme}://{location.netloc}{location.path}"
        assert login_page == f"{self.sandbox_url}/cgi-bin/componentloginpage", link["href"]
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert query["component_appid"] == self.env["WECHAT_COMPONENT_APPID"]
        # The state travels in the path (docs/wechat.md §4): nothing for WeChat to drop or escape.
        assert query["redirect_uri"].startswith(f"{self.web_url}/wechat/authorize/callback/"), query
        assert not urlsplit(query["redirect_uri"]).query, query
        # The page the merchant would see (followed as a browser does: the platform's origin as
        # Referer, which the sandbox checks like WeChat), then what its confirm button does.
        page = self.sandbox.http.get(
            link["href"], headers={"Referer": authpage.referer_for(f"{self.web_url}/wechat/authorize/")}, timeout=30
        )
        assert page.status_code == 200, page.text[:500]
        confirm = self.sandbox.control(
            "POST",
            "/authorize",
            {
                "appid": appid,
                "func": list(func),
                "pre_auth_code": query["pre_auth_code"],
                "redirect_uri": query["redirect_uri"],
                "wait_push": True,
            },
        )
        assert confirm["delivered"] in (True, None), confirm  # None: no push (nothing changed)
        if follow_redirect:
            back = self.web.http.get(confirm["redirect"], timeout=60, allow_redirects=False)
            assert back.status_code == 200, f"callback answered {back.status_code}: {back.text[:1000]}"
        if settle:
            self.wait_events_settled(appid)
        return confirm

    def wait_events_settled(self, appid: str) -> None:
        """Every authorization push recorded for ``appid`` has been handled by the worker."""
        eventually(
            lambda: self.db.rows(
                "SELECT id, info_type, state FROM authorizers_componentevent "
                "WHERE authorizer_appid = %s AND state = 'received'",
                appid,
            ),
            lambda rows: not rows,
            timeout=30,
            what=f"the authorization pushes for {appid} to be processed",
        )

    def new_merchant(
        self,
        *,
        kind: str = "subscription",
        certified: bool = True,
        kf_enabled: bool = True,
        func: Sequence[int] = (1, 6),
        kf: Sequence[str] = ("alice", "bob", "carol"),
        with_key: bool = True,
    ) -> Merchant:
        """A sandbox account, authorized through the real flow, with kf accounts and an API key."""
        alias = f"e2e{secrets.token_hex(5)}"
        account = self.sandbox.new_account(
            kind=kind, certified=certified, kf_enabled=kf_enabled, alias=alias, nick_name=f"E2E {kind} {alias[-4:]}"
        )
        appid = account["appid"]
        accounts = [f"{prefix}@{alias}" for prefix in kf]
        if accounts:
            self.sandbox.seed_kf(appid, accounts)
        confirm = self.authorize(appid, func, settle=False)
        authorizer_id = self.db.authorizer_id(appid)
        assert authorizer_id is not None, f"no authorizer row for {appid} after the authorization flow"
        # Django starts in the key's process while the worker handles the authorization push.
        issuing = self.manage_async("issue_api_key", appid, "--name", "e2e") if with_key else None
        self.wait_events_settled(appid)
        key = issuing.result().stdout.strip().splitlines()[-1] if issuing else None
        return Merchant(
            appid=appid,
            alias=alias,
            authorizer_id=authorizer_id,
            api=MerchantApi(self.web_url, key),
            kf=accounts,
            key=key,
            authorization=confirm,
        )


def _session_env(
    tmp: Path, db: E2EDatabase, broker_url: str, redis_url: str | None, *, sandbox_url: str, web_url: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k.lower() not in _PROXY_VARS}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(procs.ROOT),
            "NO_PROXY": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "platform_app.settings",
            # Production: every secret given, nothing generated, nothing insecure allowed.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on loopback: no TLS in front of these processes, so no redirect to HTTPS.
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "KFPLATFORM_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": db.django_url,
            "CELERY_BROKER_URL": broker_url,
            "FIELD_ENCRYPTION_KEYS": _field_keys(),
            "WECHAT_API_BASE": sandbox_url,
            "WECHAT_MP_BASE": sandbox_url,
            "WECHAT_OPEN_BASE": sandbox_url,
            "PUBLIC_BASE_URL": web_url,
            "WECHAT_AUTHORIZE_RATE_LIMIT": "100000/min",  # every test authorizes from 127.0.0.1
            "WECHAT_COMPONENT_APPID": "wx" + secrets.token_hex(8),
            "WECHAT_COMPONENT_APPSECRET": secrets.token_hex(16),
            "WECHAT_COMPONENT_TOKEN": _alnum(24),
            "WECHAT_COMPONENT_AES_KEY": _aes_key(),
            "API_RATE_LIMIT": "100000/min",  # the tests poll; throttling is not what they are about
            "LOG_LEVEL": "INFO",
            # The test's webhook receivers listen on 127.0.0.1 over http (production refuses the
            # blanket WEBHOOK_ALLOW_PRIVATE_URLS; an explicit network is what an operator would list);
            # retries a fraction of a second apart instead of 30 s; cleanup rules may fire every second
            # and runs finish within one.
            "WEBHOOK_PRIVATE_NETWORKS": "127.0.0.0/8",
            "WEBHOOK_RETRY_BASE_MS": str(WEBHOOK_RETRY_BASE_MS),
            "WEBHOOK_RETRY_CAP_MS": "2000",
            "WEBHOOK_SWEEP_SECONDS": "5",
            "CLEANUP_MIN_INTERVAL_SECONDS": "1",
            "CLEANUP_FINISH_SECONDS": "1",
            # The web's and the workers' counters meet here (prometheus-client's multiprocess mode).
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "var" / "prometheus"),
            "METRICS_TOKEN": secrets.token_urlsafe(24),
        }
    )
    (tmp / "var" / "prometheus").mkdir(parents=True, exist_ok=True)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CACHE_KEY_PREFIX"] = f"kfplatform_e2e_{secrets.token_hex(4)}"
    return env


_FROM_ENVIRONMENT: Any = object()


def start_stack(
    tmp: Path,
    *,
    database_url: str | None = _FROM_ENVIRONMENT,
    redis_url: str | None = _FROM_ENVIRONMENT,
    settings: dict[str, str] | None = None,
    workers: int = 1,
    worker_threads: int = WORKER_THREADS,
    broker_db: int = BROKER_REDIS_DB,
) -> Stack:
    """The whole stack in ``tmp``. By default on the servers DATABASE_URL / REDIS_URL name (or SQLite
    and the filesystem broker); the fault suite passes servers of its own. ``settings`` override the
    session's environment; with ``workers`` > 1 they run as ``worker``, ``worker2``, …; a stack
    that runs while the session's is up takes another ``broker_db`` (on a shared Redis server)."""
    if database_url is _FROM_ENVIRONMENT:
        database_url = os.environ.get("DATABASE_URL", "").strip() or None
    if redis_url is _FROM_ENVIRONMENT:
        redis_url = os.environ.get("REDIS_URL", "").strip() or None
    broker_url = "filesystem://"
    if redis_url:
        import redis

        own_db = urlsplit(redis_url).path.strip("/")
        broker_db = broker_db if own_db != str(broker_db) else broker_db + 1
        broker_url = _redis_db_url(redis_url, broker_db)
        client = redis.Redis.from_url(broker_url)
        client.flushdb()
        client.close()
    db = E2EDatabase.create(tmp, database_url)
    web_port, sandbox_port = procs.free_port(), procs.free_port()
    web_url, sandbox_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sandbox_port}"
    env = _session_env(tmp, db, broker_url, redis_url, sandbox_url=sandbox_url, web_url=web_url)
    env.update(settings or {})
    stack = Stack(
        tmp=tmp,
        env=env,
        db=db,
        web_url=web_url,
        sandbox_url=sandbox_url,
        sandbox=SandboxClient(sandbox_url),
        broker_url=broker_url,
    )
    try:
        stack.manage("migrate", "--noinput", timeout=300)
        # As the image does: whitenoise serves the admin's CSS and scripts from STATIC_ROOT.
        stack.manage("collectstatic", "--noinput", timeout=300)
        stack.start(
            "sandbox",
            procs.manage(
                "wechat_sandbox", "--port", str(sandbox_port), "--platform-url", web_url, "--push-retry-delay", "0.2"
            ),
        )
        stack.start(
            "web",
            procs.gunicorn_command(web_port),
        )
        stack.start("beat", procs.celery("beat", "-l", "info"))
        for n in range(workers):
            stack.start_worker("worker" if n == 0 else f"worker{n + 1}", threads=worker_threads)
        stack.start_worker("webhooks", threads=16, queue="webhooks")  # as docker-compose.yml
        procs.wait_until(lambda: stack.sandbox.control("GET", "/health")["ok"], timeout=30, what="the sandbox")
        procs.wait_until(lambda: stack.web.get("/healthz").status_code == 200, timeout=60, what="the web server")
        # Observable over HTTP: the sandbox's first verify-ticket push was answered `success`.
        eventually(
            lambda: [p for p in stack.sandbox.pushes() if p["info_type"] == "component_verify_ticket"],
            lambda pushes: any(p["delivered"] for p in pushes),
            timeout=60,
            what="the first component_verify_ticket push to be accepted",
        )
        stack.check_alive()
    except BaseException:
        tails = stack.tails()
        stack.stop()
        db.drop()
        pytest.fail(f"the end-to-end stack did not start\n{tails}", pytrace=True)
    return stack


def stop_stack(stack: Stack) -> None:
    stack.stop()
    stack.db.drop()
    if stack.broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(stack.broker_url)
        client.flushdb()
        client.close()
    shutil.rmtree(stack.tmp / "var" / "broker", ignore_errors=True)


def del_calls(sandbox: SandboxClient, appid: str, since: int = 0) -> list[dict[str, Any]]:
    return sandbox.calls(path=DEL, appid=appid, since=since)
