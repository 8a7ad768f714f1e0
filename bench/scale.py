"""The console and the merchant API at the size of a large service provider (issue 18).

    python -m bench scale            # 100,000 merchants, 2,000,000 kf accounts and deletions, 6,000,000 audit events
    python -m bench scale --quick    # a tenth of each
    python -m bench scale --reuse    # time again on the database a previous --keep left (migrations applied first)

Seeds a scratch PostgreSQL database (``kfscale`` unless --db-name; created and, unless --keep, dropped
here) set-based in SQL (INSERT … SELECT over generate_series: minutes, not hours), then times each page
staff use in-process with Django's test Client (server time: routing, queries, templates; no network)
as the best of three, with the number of queries the page made, beside its target. Then each scheduled
job runs at that size (bench/scale_jobs.py): a paced tick of the merchant re-read and of the kf
re-sync and the slices' WeChat calls by a real worker, the nightly reconciliation over
api_get_authorizer_list, audit retention; WeChat is a sandbox process on loopback, the broker Redis
(BENCH_REDIS_URL, the second of BENCH_REDIS_DBS, default redis://127.0.0.1:6379 and 6,7; flushed).

The PostgreSQL server comes from --database-url, else BENCH_POSTGRES_URL, else DATABASE_URL when it is
a PostgreSQL URL, else postgres://postgres@127.0.0.1:5432/postgres; the role must be allowed to
CREATE DATABASE (and the pg_trgm extension, trusted since PostgreSQL 13).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import scale_jobs

FULL = {"merchants": 100_000, "kf_per_merchant": 20, "deletions_per_merchant": 20, "audit_per_merchant": 60}
TARGET_MS = 300
DASHBOARD_TARGET_MS = 500
ROUNDS = 3
# The merchant whose pages, kf accounts and audit lines are looked up (exists at either size).
PROBE = 777


def _server_url(given: str | None) -> str:
    for candidate in (given, os.environ.get("BENCH_POSTGRES_URL"), os.environ.get("DATABASE_URL")):
        if candidate and urlsplit(candidate).scheme in ("postgres", "postgresql", "pgsql"):
            return candidate
    return "postgres://postgres@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin_sql(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _appid(expr: str) -> str:
    """The SQL for a merchant's appid from its number: wx + 16 hex digits, as WeChat's look."""
    return f"'wx' || lpad(to_hex({expr}), 16, '0')"


def seed_statements(merchants: int, kf: int, deletions: int, audit: int) -> list[tuple[str, str]]:
    """(what, SQL) in order. Ids are the merchant numbers 1..N (a fresh table's sequence)."""
    from django.conf import settings

    appid = _appid("i")
    component_appid = settings.WECHAT_COMPONENT_APPID
    return [
        (
            "the default platform",
            # The migrations make it; a database flushed since (the tests) has none.
            f"""
            INSERT INTO authorizers_platform (name, component_appid, is_default, status, appsecret_ciphertext,
                token_ciphertext, aes_key_ciphertext, previous_aes_key_ciphertext, created_at, updated_at)
            SELECT 'default', '{component_appid}', true, 'active', '', '', '', '', now(), now()
            WHERE NOT EXISTS (SELECT 1 FROM authorizers_platform WHERE is_default)
            """,
        ),
        (
            f"{merchants:,} merchants",
            f"""
            INSERT INTO authorizers_authorizer (
                id, appid, nickname, user_name, alias, principal_name, kind, service_type_id, verify_type_id,
                account_status, func_ids, status, authorized_at, refresh_token_ciphertext, access_token_ciphertext,
                access_token_expires_at, token_refresh_count, created_at, updated_at, platform_id)
            SELECT i, {appid}, 'Shop ' || i, 'gh_' || lpad(to_hex(i), 12, '0'), 'shop' || i, 'Company ' || i,
                CASE WHEN i % 10 < 6 THEN 'subscription' WHEN i % 10 < 8 THEN 'service'
                     WHEN i % 10 = 8 THEN 'mini_program' ELSE 'unknown' END,
                CASE WHEN i % 10 < 6 THEN 1 WHEN i % 10 < 8 THEN 2 ELSE 0 END,
                CASE WHEN i % 7 = 0 THEN -1 ELSE 0 END,
                CASE WHEN i % 97 = 0 THEN 2 ELSE 1 END,
                CASE WHEN i % 5 = 0 THEN '[2, 3]'::jsonb ELSE '[1, 6, 15]'::jsonb END,
                CASE WHEN i % 50 = 0 THEN 'revoked' WHEN i % 77 = 0 THEN 'deactivated' ELSE 'active' END,
                now() - (i % 365) * interval '1 day', '', '', now() + interval '1 hour', 0,
                now() - (i % 365) * interval '1 day', now(),
                (SELECT id FROM authorizers_platform WHERE is_default)  -- made by the migrations
            FROM generate_series(1, {merchants}) AS i
            """,
        ),
        (
            f"{merchants * kf:,} kf accounts",
            f"""
            INSERT INTO kfaccounts_kfaccount (
                authorizer_id, kf_account, kf_id, kf_nick, kf_headimgurl, kf_wx, invite_wx, invite_status,
                first_seen_at, last_seen_at, gone_at)
            SELECT i, 'kf' || j || '@shop' || i, (i * {kf} + j)::text, 'Agent ' || j || ' of shop ' || i, '',
                CASE WHEN j % 3 = 0 THEN '' ELSE 'wx_' || i || '_' || j END,
                CASE WHEN j % 3 = 0 THEN 'invitee_' || i || '_' || j ELSE '' END,
                CASE WHEN j % 3 = 0 THEN (ARRAY['waiting', 'rejected', 'expired'])[1 + (i + j) % 3] ELSE '' END,
                now() - interval '30 days', now() - (j % 5) * interval '1 hour',
                CASE WHEN j = {kf} THEN now() - interval '1 day' END
            FROM generate_series(1, {merchants}) AS i CROSS JOIN generate_series(1, {kf}) AS j
            """,
        ),
        (
            f"{merchants * deletions:,} deletions",
            f"""
            INSERT INTO kfaccounts_deletionrequest (
                authorizer_id, kf_account, status, reason, errcode, errmsg, rid, attempts, transient_failures,
                outcome_unknown, requested_by_kind, requested_by_id, requested_by_label, created_at, updated_at,
                started_at, finished_at)
            SELECT i, 'old' || j || '@shop' || i,
                CASE WHEN j % 10 = 0 THEN 'failed' WHEN j = 1 AND i % 100 = 0 THEN 'pending'
                     WHEN j % 17 = 0 THEN 'rejected' ELSE 'succeeded' END,
                CASE WHEN j % 10 = 0 THEN 'invalid_kf_account' WHEN j % 17 = 0 THEN 'not_eligible' ELSE '' END,
                CASE WHEN j % 10 = 0 THEN 65401 END,
                CASE WHEN j % 10 = 0 THEN 'invalid kf_account' ELSE '' END,
                'rid-' || i || '-' || j, 1, 0, false, 'api_key', i::text, 'key of shop ' || i, t, t, t, t
            -- One series in order, not a join (whose loop order is the planner's): over the last 90
            -- days, older rows first (lower ids), as a table fills in time.
            FROM generate_series(0, {merchants * deletions - 1}) AS n
            CROSS JOIN LATERAL (SELECT n / {deletions} + 1 AS i, n % {deletions} + 1 AS j) AS ij
            CROSS JOIN LATERAL (
                SELECT now() - interval '90 days' * (1 - (i * {deletions} + j)::float / ({merchants + 1} * {deletions}))
                AS t
            ) AS c
            """,
        ),
        (
            f"{merchants * audit:,} audit events",
            f"""
            INSERT INTO audit_auditevent (
                at, actor_kind, actor_id, actor_label, authorizer_appid, action, subject, outcome, errcode,
                errmsg, rid, detail)
            SELECT now() - interval '90 days' * (1 - (i * {audit} + k)::float / ({merchants + 1} * {audit})),
                'system', '', 'worker',
                {appid},
                (ARRAY['deletion.requested', 'deletion.succeeded', 'deletion.failed', 'wechat.authorizer_token_called',
                       'kf_list.synced', 'wechat.kfaccount_del'])[1 + k % 6],
                'old' || (k % 20) || '@shop' || i,
                CASE WHEN k % 6 = 2 THEN 'invalid_kf_account' ELSE 'ok' END,
                CASE WHEN k % 6 = 2 THEN 65401 WHEN k % 6 IN (3, 5) THEN 0 END,
                '', CASE WHEN k % 6 = 5 THEN 'rid-' || i || '-' || k ELSE '' END, '{{}}'::jsonb
            FROM generate_series(0, {merchants * audit - 1}) AS n
            CROSS JOIN LATERAL (SELECT n / {audit} + 1 AS i, n % {audit} + 1 AS k) AS ik
            """,
        ),
        (
            "sequences",
            """
            SELECT setval(pg_get_serial_sequence('authorizers_authorizer', 'id'), (SELECT max(id) FROM authorizers_authorizer))
            """,
        ),
    ]


@dataclass
class Page:
    name: str
    path: str
    target_ms: int = TARGET_MS
    api: bool = False
    header: dict[str, str] | None = None


def pages(probe_deletion: int, probe_appid: str, api_key: str, metrics_token: str) -> list[Page]:
    api = {"HTTP_AUTHORIZATION": f"Api-Key {api_key}"}
    return [
        Page("dashboard /admin/", "/admin/", DASHBOARD_TARGET_MS),
        Page("merchants list", "/admin/authorizers/authorizer/"),
        Page("merchants filtered by eligibility", "/admin/authorizers/authorizer/?eligible=yes"),
        Page("merchants search (appid)", f"/admin/authorizers/authorizer/?q={probe_appid}"),
        Page("a merchant's page", f"/admin/authorizers/authorizer/{PROBE}/change/"),
        Page("kf accounts list", "/admin/kfaccounts/kfaccount/"),
        Page(f"kf accounts search (kf3@shop{PROBE})", f"/admin/kfaccounts/kfaccount/?q=kf3@shop{PROBE}"),
        Page("deletions list", "/admin/kfaccounts/deletionrequest/"),
        Page("deletions filtered by failed", "/admin/kfaccounts/deletionrequest/?status__exact=failed"),
        Page("a deletion's page", f"/admin/kfaccounts/deletionrequest/{probe_deletion}/change/"),
        Page("audit events list", "/admin/audit/auditevent/"),
        Page("audit events search (appid)", f"/admin/audit/auditevent/?q={probe_appid}"),
        Page("API GET /api/v1/kf-accounts/", "/api/v1/kf-accounts/", api=True, header=api),
        Page("API GET /api/v1/deletions/", "/api/v1/deletions/", api=True, header=api),
        Page("/metrics", "/metrics", header={"HTTP_AUTHORIZATION": f"Bearer {metrics_token}"}),
    ]


def _time_page(client: Any, page: Page) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    best = float("inf")
    queries = 0
    status = 0
    for _ in range(ROUNDS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(page.path, **(page.header or {}))
            elapsed = time.perf_counter() - started
        status = response.status_code
        queries = len(captured)
        best = min(best, elapsed)
    return best, queries, status


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
    )


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--database-url", help="a PostgreSQL server URL allowed to CREATE DATABASE")
    parser.add_argument("--db-name", default="kfscale", help="the scratch database (default kfscale)")
    parser.add_argument("--keep", action="store_true", help="leave the scratch database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="time the database a --keep run left, without seeding")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: pages, jobs")
    options = parser.parse_args(argv)
    options.skip = set(filter(None, options.skip.split(",")))
    sizes = {k: v // 10 if options.quick and k == "merchants" else v for k, v in FULL.items()}
    server = _server_url(options.database_url)
    url = _with_database(server, options.db_name)
    if not options.reuse:
        _admin_sql(server, f'DROP DATABASE IF EXISTS "{options.db_name}"', f'CREATE DATABASE "{options.db_name}"')
    scratch = tempfile.mkdtemp(prefix="kfscale-")
    # WeChat is the sandbox; the platform and it share the sandbox's demo component. Nothing else is called.
    from sandbox import seed

    os.environ.update(
        {
            "WECHAT_COMPONENT_APPID": seed.DEMO_COMPONENT_APPID,
            "WECHAT_COMPONENT_APPSECRET": seed.DEMO_COMPONENT_APPSECRET,
            "WECHAT_COMPONENT_TOKEN": seed.DEMO_COMPONENT_TOKEN,
            "WECHAT_COMPONENT_AES_KEY": seed.DEMO_COMPONENT_AES_KEY,
        }
    )
    wechat = scale_jobs.start_sandbox().url
    broker = _broker_url()
    _flush(broker)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "KFPLATFORM_VAR_DIR": scratch,
            "DJANGO_SETTINGS_MODULE": "platform_app.settings",
            "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true"),  # the demo configuration: generated keys
            "WECHAT_API_BASE": wechat,
            "WECHAT_MP_BASE": wechat,
            "WECHAT_OPEN_BASE": wechat,
            "CELERY_BROKER_URL": broker,
            "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or "scale-bench-metrics-token",
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    os.environ.pop("REDIS_URL", None)
    try:
        _measure(options, sizes, url)
    finally:
        scale_jobs.stop_sandbox()
        _flush(broker)
        if not options.keep:
            from django.db import connections

            connections.close_all()
            _admin_sql(server, f'DROP DATABASE IF EXISTS "{options.db_name}" WITH (FORCE)')


def _broker_url() -> str:
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
    broker_db = os.environ.get("BENCH_REDIS_DBS", "6,7").split(",")[1]
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{broker_db}"))


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _measure(options: argparse.Namespace, sizes: dict[str, int], url: str) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test Client's host, no outgoing mail
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    merchants = sizes["merchants"]
    if not options.reuse:
        print(f"seeding {options.db_name}: {'quick (a tenth)' if options.quick else 'full size'}")
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
            for what, sql in seed_statements(
                merchants, sizes["kf_per_merchant"], sizes["deletions_per_merchant"], sizes["audit_per_merchant"]
            ):
                step = time.monotonic()
                cursor.execute(sql)
                print(f"  {what:<28} {time.monotonic() - step:7.1f} s")
        step = time.monotonic()
        with connection.cursor() as cursor:
            for name in ("authorizers_authorizer", "kfaccounts_kfaccount", "kfaccounts_deletionrequest"):
                cursor.execute(f"VACUUM ANALYZE {name}")
            cursor.execute("VACUUM ANALYZE audit_auditevent")
        print(f"  {'vacuum analyze':<28} {time.monotonic() - step:7.1f} s")
        print(f"seeded in {time.monotonic() - started:.0f} s")
    load = os.getloadavg()
    if "pages" not in options.skip:
        client, api_key, probe_deletion, probe_appid = _fixtures()
        table: list[tuple[Page, float, int, int]] = []
        for page in pages(probe_deletion, probe_appid, api_key, settings.METRICS_TOKEN):
            best, queries, status = _time_page(client, page)
            table.append((page, best, queries, status))
            print(f"  {page.name:<44} {best * 1000:9.0f} ms", flush=True)
        _print_table(table, merchants, sizes, options.quick)
        print()
        _claim_plan()
    if "jobs" not in options.skip:
        print("\nscheduled jobs:", flush=True)
        for line in scale_jobs.calls_per_day():
            print("  " + line)
        rows = scale_jobs.run_all(database_url=url)
        print()
        print("\n".join(scale_jobs.table(rows)))
    end = os.getloadavg()
    print(f"\nmachine: {_machine()}; load average {load[0]:.2f} at the start, {end[0]:.2f} at the end (1 min)")


def _fixtures() -> tuple[Any, str, int, str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from audit.services import Actor
    from authorizers.api_keys import api_key_issue
    from authorizers.models import Authorizer
    from kfaccounts.models import DeletionRequest

    User = get_user_model()
    staff = User.objects.filter(username="scale-bench").first() or User.objects.create_superuser(
        username="scale-bench", email="", password=None
    )
    client = Client()
    client.force_login(staff)
    merchant = Authorizer.objects.get(pk=PROBE)
    _, key = api_key_issue(authorizer=merchant, name="scale bench", actor=Actor.system("bench"))
    deletion = DeletionRequest.objects.filter(authorizer_id=PROBE).order_by("id").values_list("pk", flat=True)[0]
    return client, key, deletion, merchant.appid


def _print_table(table: list[tuple[Page, float, int, int]], merchants: int, sizes: dict[str, int], quick: bool) -> None:
    print()
    print(
        f"scale: {merchants:,} merchants, {merchants * sizes['kf_per_merchant']:,} kf accounts, "
        f"{merchants * sizes['deletions_per_merchant']:,} deletions, {merchants * sizes['audit_per_merchant']:,} "
        f"audit events{' (--quick: a tenth)' if quick else ''}; server time in-process, best of {ROUNDS}"
    )
    print(f"machine: {_machine()}")
    print()
    print("| page | time | target | queries | |")
    print("|---|---:|---:|---:|---|")
    for page, best, queries, status in table:
        ms = best * 1000
        verdict = "met" if ms <= page.target_ms and status == 200 else (f"HTTP {status}" if status != 200 else "over")
        print(f"| {page.name} | {ms:,.0f} ms | {page.target_ms} ms | {queries} | {verdict} |")


def _claim_plan() -> None:
    """The claim's own SQL under EXPLAIN ANALYZE: which index serves it, how long it takes."""
    from django.db import connection, transaction
    from django.db.models import Q
    from django.utils import timezone

    from kfaccounts.models import DeletionRequest

    pending_merchant = (
        DeletionRequest.objects.filter(status="pending").order_by().values_list("authorizer_id", flat=True).first()
    )
    due = DeletionRequest.objects.filter(authorizer_id=pending_merchant or PROBE, status="pending").filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
    )
    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = due.select_for_update(skip_locked=True).order_by("id")[:50].query.sql_with_params()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    print("the claim (one merchant's due rows, FOR UPDATE SKIP LOCKED, LIMIT 50):")
    for line in plan:
        print("   " + line)
