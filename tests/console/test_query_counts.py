"""Every page staff use (and the merchant API's lists) makes as many queries with 50 rows per table as
with 10: no query per row, so its cost at 100,000 merchants is its index walks (bench scale times it).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.models import AccountKind, Authorizer
from kfaccounts.models import DeletionRequest, KfAccount
from tests.console.conftest import client_for

pytestmark = pytest.mark.django_db

METRICS_TOKEN = "query-count-metrics-token"


def _grow(rows: int, start: int) -> None:
    """``rows`` more merchants, each with a kf account, a deletion (failed or done) and audit lines."""
    now = timezone.now()
    merchants = Authorizer.objects.bulk_create(
        Authorizer(
            appid=f"wx{n:016x}",
            nickname=f"Shop {n}",
            alias=f"shop{n}",
            kind=AccountKind.SUBSCRIPTION if n % 3 else AccountKind.UNKNOWN,
            verify_type_id=0,
            account_status=1,
            func_ids=[1, 6] if n % 2 else [2],
        )
        for n in range(start, start + rows)
    )
    KfAccount.objects.bulk_create(
        KfAccount(authorizer=m, kf_account=f"kf{n}@shop{m.pk}", kf_nick=f"Agent {n}", last_seen_at=now)
        for n, m in enumerate(merchants)
    )
    DeletionRequest.objects.bulk_create(
        DeletionRequest(
            authorizer=m,
            kf_account=f"old{n}@shop{m.pk}",
            status="failed" if n % 2 else "succeeded",
            reason="invalid_kf_account" if n % 2 else "",
            errcode=65401 if n % 2 else None,
            requested_by_kind="api_key",
        )
        for n, m in enumerate(merchants)
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_kind="system",
            authorizer_appid=m.appid,
            action=("deletion.requested", "deletion.failed", "wechat.authorizer_token_called")[k],
            subject=f"old{k}@shop{m.pk}",
            outcome=("ok", "invalid_kf_account", "ok")[k],
        )
        for m in merchants
        for k in range(3)
    )


def _pages(probe: Authorizer, deletion: DeletionRequest) -> dict[str, str]:
    return {
        "dashboard": "/admin/",
        "merchants": "/admin/authorizers/authorizer/",
        "merchants eligible": "/admin/authorizers/authorizer/?eligible=yes",
        "merchants not eligible": "/admin/authorizers/authorizer/?eligible=no",
        "merchant page": f"/admin/authorizers/authorizer/{probe.pk}/change/",
        "kf accounts": "/admin/kfaccounts/kfaccount/",
        "kf accounts search": f"/admin/kfaccounts/kfaccount/?q=kf3@shop{probe.pk}",
        "kf accounts of a merchant": f"/admin/kfaccounts/kfaccount/?authorizer__id__exact={probe.pk}",
        "deletions": "/admin/kfaccounts/deletionrequest/",
        "deletions failed": "/admin/kfaccounts/deletionrequest/?status__exact=failed",
        "deletions search appid": f"/admin/kfaccounts/deletionrequest/?q={probe.appid}",
        "deletion page": f"/admin/kfaccounts/deletionrequest/{deletion.pk}/change/",
        "audit": "/admin/audit/auditevent/",
        "audit search appid": f"/admin/audit/auditevent/?q={probe.appid}",
        "audit filtered": "/admin/audit/auditevent/?action=deletion.failed&outcome=invalid_kf_account",
    }


def _counts(get: Callable[[str], int], pages: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, path in pages.items():
        get(path)  # warm: sessions, content types and permissions cached once
        with CaptureQueriesContext(connection) as captured:
            status = get(path)
        assert status == 200, (name, path, status)
        counts[name] = len(captured)
    return counts


def test_no_console_page_or_api_list_makes_more_queries_for_more_rows(superuser, api_client_for, settings) -> None:
    settings.METRICS_TOKEN = METRICS_TOKEN
    _grow(10, start=1)
    probe = Authorizer.objects.order_by("pk")[3]
    deletion = DeletionRequest.objects.filter(authorizer=probe).get()
    staff = client_for(superuser)
    api = api_client_for(probe)
    pages = _pages(probe, deletion)

    def get(path: str) -> int:
        if path.startswith("/api/"):
            return api.get(path).status_code
        if path == "/metrics":
            return staff.get(path, HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code
        return staff.get(path).status_code

    pages |= {"api kf accounts": "/api/v1/kf-accounts/", "api deletions": "/api/v1/deletions/", "metrics": "/metrics"}
    small = _counts(get, pages)
    _grow(40, start=1000)
    KfAccount.objects.bulk_create(  # and the probe merchant's own lists grow too
        KfAccount(authorizer=probe, kf_account=f"more{n}@shop{probe.pk}", last_seen_at=timezone.now())
        for n in range(40)
    )
    large = _counts(get, pages)
    assert large == small


def test_a_deletions_page_shows_its_own_history_found_through_the_merchants_index(superuser) -> None:
    _grow(2, start=1)
    mine, other = DeletionRequest.objects.order_by("pk")
    appid = mine.authorizer.appid
    for deletion, action, at_appid in (
        (mine, "deletion.requested", appid),
        (mine, "deletion.succeeded", appid),
        (other, "deletion.cancelled", other.authorizer.appid),
    ):
        AuditEvent.objects.create(
            actor_kind="system", authorizer_appid=at_appid, action=action, detail={"deletion_id": deletion.pk}
        )
    page = client_for(superuser).get(f"/admin/kfaccounts/deletionrequest/{mine.pk}/change/").content.decode()
    assert "deletion.requested" in page or "requested" in page
    assert "deletion.cancelled" not in page
    rows = page.split('class="console-inline"', 1)[1].split("</table>", 1)[0].count("<tr>")
    assert rows == 1 + 2  # the header and this deletion's two lines
