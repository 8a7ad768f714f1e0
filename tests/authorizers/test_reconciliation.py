"""The nightly reconciliation: merchants WeChat lists as gone or unknown become merchant alerts."""

from __future__ import annotations

import json

import pytest

from audit.services import Actor
from authorizers.alerts import alerts_active
from authorizers.models import AuthorizerStatus, PlatformAlert
from authorizers.reconciliation import authorizers_reconcile, merchants_reread_tick
from tests.conftest import WECHAT

pytestmark = pytest.mark.django_db

AUTHORIZER_LIST = f"{WECHAT}/cgi-bin/component/api_get_authorizer_list"


def test_reconciliation_flags_merchants_wechat_lists_as_gone_or_unknown_and_clears_what_resolved(
    wechat, component_ready, make_authorizer
):
    kept = make_authorizer()
    gone = make_authorizer()
    make_authorizer(status=AuthorizerStatus.REVOKED)  # revoked here and not listed: consistent
    stranger = "wx" + "f" * 16
    page1 = {"total_count": 2, "list": [{"authorizer_appid": kept.appid, "auth_time": 1}]}
    page2 = {"total_count": 2, "list": [{"authorizer_appid": stranger, "auth_time": 2}]}
    wechat.post(AUTHORIZER_LIST, json=page1)
    wechat.post(AUTHORIZER_LIST, json=page2)

    result = authorizers_reconcile(actor=Actor.schedule("test"))

    assert (result.listed, result.gone, result.unknown) == (2, [gone.appid], [stranger])
    offsets = [json.loads(c.request.body)["offset"] for c in wechat.calls if AUTHORIZER_LIST in c.request.url]
    assert offsets == [0, 1]
    active = {(a.code, a.authorizer_appid): a for a in alerts_active()}
    assert set(active) == {("merchant_gone", gone.appid), ("merchant_unknown", stranger)}
    assert gone.appid in active[("merchant_gone", gone.appid)].message
    assert alerts_active(authorizer_appid=gone.appid) == [active[("merchant_gone", gone.appid)]]
    assert alerts_active(authorizer_appid="") == []  # no platform-wide alert: the banner stays empty

    # WeChat now lists both of ours and no stranger: both flags clear.
    wechat.replace(
        "POST",
        AUTHORIZER_LIST,
        json={"total_count": 2, "list": [{"authorizer_appid": kept.appid}, {"authorizer_appid": gone.appid}]},
    )
    authorizers_reconcile(actor=Actor.schedule("test"))
    assert alerts_active() == []
    assert PlatformAlert.objects.filter(cleared_at__isnull=False).count() == 2


def test_the_re_read_covers_every_active_merchant_once_per_period_a_slice_a_tick(
    make_authorizer, django_capture_on_commit_callbacks, settings
):
    from authorizers.tasks import refresh_authorizer_info

    # 4 active merchants, a tick half the period: 2 a tick.
    settings.MERCHANT_REREAD_SECONDS, settings.PACED_TICK_SECONDS = 600, 300
    active = [make_authorizer().pk for _ in range(3)] + [make_authorizer(verify_type_id=-1).pk]
    make_authorizer(status=AuthorizerStatus.REVOKED)
    ticks = []
    for _ in range(3):
        with django_capture_on_commit_callbacks() as reread:
            merchants_reread_tick()
        ticks.append([c.args[0] for c in reread if c.func == refresh_authorizer_info.delay])
    assert [len(t) for t in ticks] == [2, 2, 0]
    assert sorted(ticks[0] + ticks[1]) == sorted(active)


TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_authorizer_token"


def test_a_merchant_revoked_here_that_wechat_still_lists_is_restored_with_the_listed_refresh_token(
    wechat, component_ready, make_authorizer
):
    """Issue 16.1: only WeChat's list (or 61003) says an authorization is gone."""
    from audit.models import AuditEvent
    from authorizers.tokens import refresh_token_of

    merchant = make_authorizer(status=AuthorizerStatus.REVOKED)
    wechat.post(
        AUTHORIZER_LIST,
        json={"total_count": 1, "list": [{"authorizer_appid": merchant.appid, "refresh_token": "RT_LISTED"}]},
    )
    wechat.post(
        TOKEN_URL, json={"authorizer_access_token": "AT_BACK", "expires_in": 7200, "authorizer_refresh_token": "RT_NEW"}
    )
    result = authorizers_reconcile(actor=Actor.schedule("test"))
    assert result.restored == [merchant.appid]
    (refresh,) = [c for c in wechat.calls if TOKEN_URL in c.request.url]
    assert json.loads(refresh.request.body)["authorizer_refresh_token"] == "RT_LISTED"
    merchant.refresh_from_db()
    assert (merchant.status, merchant.revoked_at, refresh_token_of(merchant)) == ("active", None, "RT_NEW")
    assert AuditEvent.objects.filter(action="authorizer.restored", authorizer_appid=merchant.appid).exists()
    assert alerts_active() == []


def test_a_listed_merchant_that_cannot_be_restored_raises_an_alert_and_stays_as_it_was(
    wechat, component_ready, make_authorizer
):
    refused = make_authorizer(status=AuthorizerStatus.REVOKED)
    tokenless = make_authorizer(status=AuthorizerStatus.REVOKED)
    wechat.post(
        AUTHORIZER_LIST,
        json={
            "total_count": 2,
            "list": [
                {"authorizer_appid": refused.appid, "refresh_token": "RT_BAD"},
                {"authorizer_appid": tokenless.appid},
            ],
        },
    )
    wechat.post(TOKEN_URL, json={"errcode": 61023, "errmsg": "refresh_token is invalid"})
    result = authorizers_reconcile(actor=Actor.schedule("test"))
    assert result.restored == []
    for merchant in (refused, tokenless):
        merchant.refresh_from_db()
        assert merchant.status == "revoked"
        (alert,) = alerts_active(authorizer_appid=merchant.appid)
        assert alert.code == "refresh_token_invalid" and "still lists" in alert.message and alert.fix
    assert alerts_active(authorizer_appid=refused.appid)[0].errcode == 61023


def test_an_active_merchant_whose_61023_was_not_recovered_is_restored_and_its_alert_cleared(
    wechat, component_ready, make_authorizer
):
    from authorizers.alerts import alert_raise, merchant_held

    merchant = make_authorizer()
    alert_raise(code=PlatformAlert.Code.REFRESH_TOKEN_INVALID, authorizer_appid=merchant.appid)
    assert merchant_held(merchant.appid)
    wechat.post(
        AUTHORIZER_LIST,
        json={"total_count": 1, "list": [{"authorizer_appid": merchant.appid, "refresh_token": "RT_NOW"}]},
    )
    wechat.post(
        TOKEN_URL, json={"authorizer_access_token": "AT", "expires_in": 7200, "authorizer_refresh_token": "RT2"}
    )
    assert authorizers_reconcile(actor=Actor.schedule("test")).restored == [merchant.appid]
    assert not merchant_held(merchant.appid)


def test_reconciliation_pages_through_a_list_longer_than_one_page_500_at_a_time(wechat, component_ready):
    from authorizers.models import Authorizer

    # 1,201 merchants, WeChat serving at most 500 a page as it does; one of ours is not listed.
    appids = [f"wx{n:016x}" for n in range(1, 1202)]
    Authorizer.objects.bulk_create(Authorizer(appid=a, status=AuthorizerStatus.ACTIVE) for a in appids)
    missing = appids.pop()

    def page(request):
        body = json.loads(request.body)
        offset, count = body["offset"], min(500, body["count"])
        items = [{"authorizer_appid": a, "refresh_token": f"R{a}"} for a in appids[offset : offset + count]]
        return 200, {}, json.dumps({"total_count": len(appids), "list": items})

    wechat.add_callback("POST", AUTHORIZER_LIST, callback=page)

    result = authorizers_reconcile(actor=Actor.schedule("test"))

    bodies = [json.loads(c.request.body) for c in wechat.calls if AUTHORIZER_LIST in c.request.url]
    assert [(b["offset"], b["count"]) for b in bodies] == [(0, 500), (500, 500), (1000, 500)]
    assert (result.listed, result.gone, result.unknown) == (1200, [missing], [])


def test_reconciliation_never_reads_the_whole_merchant_table_at_once(wechat, component_ready):
    """Issue 18: at 100,000 merchants our side is read by the page's appids and in keyset chunks."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from authorizers.models import Authorizer
    from authorizers.reconciliation import LIST_PAGE, RECONCILE_CHUNK

    n = RECONCILE_CHUNK * 2 + 100  # three chunks of ours, nine pages of WeChat's
    appids = [f"wx{k:016x}" for k in range(1, n + 1)]
    Authorizer.objects.bulk_create(Authorizer(appid=a, status=AuthorizerStatus.ACTIVE) for a in appids)
    listed = [*appids[:-3], "wx" + "e" * 16]  # three of ours gone, one stranger

    def page(request):
        body = json.loads(request.body)
        items = [{"authorizer_appid": a} for a in listed[body["offset"] : body["offset"] + min(500, body["count"])]]
        return 200, {}, json.dumps({"total_count": len(listed), "list": items})

    wechat.add_callback("POST", AUTHORIZER_LIST, callback=page)
    with CaptureQueriesContext(connection) as captured:
        result = authorizers_reconcile(actor=Actor.schedule("test"))

    assert (result.listed, result.gone, result.unknown) == (len(listed), appids[-3:], ["wx" + "e" * 16])
    reads = [q["sql"] for q in captured if q["sql"].startswith("SELECT") and '"authorizers_authorizer"' in q["sql"]]
    by_page = [sql for sql in reads if '"appid" IN (' in sql]
    by_chunk = [sql for sql in reads if f"LIMIT {RECONCILE_CHUNK}" in sql]
    assert len(by_page) == -(-len(listed) // LIST_PAGE) and len(by_chunk) == 3 + 1  # the last one finds none
    assert all(sql.count("'wx") <= LIST_PAGE for sql in by_page)
    assert set(reads) - set(by_page) - set(by_chunk) == set(), "a read of the merchant table that is not bounded"
