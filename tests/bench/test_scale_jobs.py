"""The scale bench's scheduled-jobs helpers at a tiny size: the lock sampler, WeChat's side of the
seeded merchants in a real sandbox process, and reconciliation paging through it 500 at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from bench import scale_jobs
from bench.scale import seed_statements

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench is PostgreSQL's")


def _url() -> str:
    conf = connection.settings_dict
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgresql://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def _default_platform_is_the_sandboxs() -> None:
    """The migrations made the default platform with the test settings' component, before the
    test named the sandbox's; the bench sets it before migrating."""
    from authorizers.models import Platform
    from sandbox import seed

    Platform.objects.filter(is_default=True).update(component_appid=seed.DEMO_COMPONENT_APPID)


@pytest.mark.django_db
def test_the_watch_sees_a_transaction_that_holds_an_id_and_its_statement() -> None:
    url = _url()
    held = threading.Event()
    with scale_jobs.watched(url) as watch, psycopg.connect(url) as other:
        other.execute("SELECT txid_current() /* holding */")  # an id, as a write or a row lock takes
        seen_from = watch.samples
        # Held until the sampler has looked at it a few times, however slow the machine is.
        while watch.samples < seen_from + 3:
            held.wait(0.01)
        other.rollback()
    assert watch.longest_tx_ms > 0 and "holding" in watch.longest_tx_query


@pytest.mark.django_db(transaction=True)
def test_reconciliation_pages_the_sandbox_list_500_at_a_time(settings, tmp_path: Path) -> None:
    from sandbox import seed

    # The sandbox's platform is the default one before the merchants are seeded: they belong to it.
    settings.WECHAT_COMPONENT_APPID = seed.DEMO_COMPONENT_APPID
    settings.WECHAT_COMPONENT_APPSECRET = seed.DEMO_COMPONENT_APPSECRET
    with connection.cursor() as cursor:
        for _, sql in seed_statements(merchants=1100, kf=1, deletions=1, audit=1):
            cursor.execute(sql)
    _default_platform_is_the_sandboxs()
    sandbox = scale_jobs.sandbox_start(tmp_path)
    try:
        settings.WECHAT_API_BASE = sandbox.url
        tokens = scale_jobs.wechat_side(sandbox)
        # 1,100 merchants, 22 revoked here: WeChat lists the other 1,078 less 3 (gone), 3 revoked
        # here (restored) and 3 strangers (unknown).
        assert len(tokens) == 1100 - 22 + 3
        row = scale_jobs.reconciliation(sandbox, _url())
    finally:
        sandbox.proc.stop()
    assert row.work.startswith(
        "3 pages of 500 (offsets 0, 500, … in order), 1,081 listed; 3 gone, 3 unknown, 3 restored"
    )
    assert row.memory.endswith("MB") and row.watch.samples > 0


@pytest.mark.django_db(transaction=True)
def test_a_prepared_merchant_s_re_sync_finds_its_list_unchanged(settings, tmp_path: Path) -> None:
    """The bench times a re-sync of a list that did not change, as most are: the sandbox lists exactly
    what the mirror holds (an invitation too)."""
    from audit.services import Actor
    from authorizers.models import Authorizer
    from kfaccounts.models import KfAccount
    from kfaccounts.services import kf_accounts_sync
    from sandbox import seed

    with connection.cursor() as cursor:
        for _, sql in seed_statements(merchants=20, kf=4, deletions=1, audit=1):
            cursor.execute(sql)
    _default_platform_is_the_sandboxs()
    fields = ["kf_account", "kf_id", "kf_nick", "kf_headimgurl", "kf_wx", "invite_wx", "invite_status", "gone_at"]
    sandbox = scale_jobs.sandbox_start(tmp_path)
    try:
        settings.WECHAT_API_BASE = sandbox.url
        settings.WECHAT_COMPONENT_APPID = seed.DEMO_COMPONENT_APPID
        settings.WECHAT_COMPONENT_APPSECRET = seed.DEMO_COMPONENT_APPSECRET
        tokens = scale_jobs.wechat_side(sandbox)
        merchant = Authorizer.objects.get(pk=1)
        scale_jobs.prepare_kf(sandbox, [merchant], tokens)
        before = list(KfAccount.objects.filter(authorizer=merchant).order_by("id").values_list(*fields))
        result = kf_accounts_sync(authorizer=Authorizer.objects.get(pk=1), actor=Actor.system("test"))
    finally:
        sandbox.proc.stop()
    assert (result.present, result.added, result.gone) == (3, 0, 0)
    assert list(KfAccount.objects.filter(authorizer=merchant).order_by("id").values_list(*fields)) == before
    assert any(row[5] for row in before)  # an invitation among them
