"""The console in Simplified Chinese or English, times in TIME_ZONE to the second."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse

from kfaccounts.models import DeletionRequest

pytestmark = pytest.mark.django_db


def test_time_zone_defaults_to_shanghai():
    assert settings.TIME_ZONE == "Asia/Shanghai"


def test_the_console_follows_the_browsers_language(superuser_client, shop):
    chinese = superuser_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert "kfplatform 运营控制台" in chinese and "商户状态分布" in chinese and 'lang="zh-hans"' in chinese
    english = superuser_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "kfplatform staff console" in english and "Merchants by state" in english


def test_the_language_switch_overrides_the_browser(superuser_client, shop):
    response = superuser_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert response.status_code == 302
    page = superuser_client.get(
        reverse("admin:kfaccounts_kfaccount_changelist"), HTTP_ACCEPT_LANGUAGE="en-US"
    ).content.decode()
    assert "在微信删除所选客服账号" in page and "绑定的微信号" in page


def test_times_are_shown_in_beijing_time_with_seconds(superuser_client, shop):
    deletion = shop.deletions.get(status="pending")
    DeletionRequest.objects.filter(pk=deletion.pk).update(
        created_at=datetime(2026, 3, 4, 16, 4, 5, tzinfo=UTC),
        next_attempt_at=datetime(2027, 3, 4, 16, 4, 35, tzinfo=UTC),
    )
    page = reverse("admin:kfaccounts_deletionrequest_change", args=[deletion.pk])
    for language in ("en-US", "zh-CN"):
        html = superuser_client.get(page, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert "2026-03-05 00:04:05" in html  # created_at, in Asia/Shanghai
        assert "2027-03-05 00:04:35" in html  # the next attempt of a deletion deferred for quota
    listing = superuser_client.get(reverse("admin:kfaccounts_deletionrequest_changelist")).content.decode()
    assert "2026-03-05 00:04:05" in listing and "2027-03-05 00:04:35" in listing


def test_another_time_zone_can_be_configured(superuser_client, shop, settings):
    settings.TIME_ZONE = "UTC"
    deletion = shop.deletions.get(status="pending")
    DeletionRequest.objects.filter(pk=deletion.pk).update(created_at=datetime(2026, 3, 4, 16, 4, 5, tzinfo=UTC))
    html = superuser_client.get(reverse("admin:kfaccounts_deletionrequest_change", args=[deletion.pk])).content.decode()
    assert "2026-03-04 16:04:05" in html


def test_the_domains_texts_are_chinese_in_the_console_and_the_api_stays_english(
    superuser_client, make_authorizer, component_ready, api_client_for
):
    # Uncertified Official Account without the kf permission sets: two reasons, in a rule's words.
    merchant = make_authorizer(nickname="Noodle Bar", verify_type_id=-1, func_ids=[2, 3])
    DeletionRequest.objects.create(
        authorizer=merchant,
        kf_account="kf1@noodle",
        status="rejected",
        reason="not_eligible",
        requested_by_kind="api_key",
        requested_by_label="kfp_test…",
        finished_at=datetime(2026, 3, 4, 16, 4, 5, tzinfo=UTC),
    )
    english_reasons = [
        "Official Account (subscription) must be certified (verify_type_info.id is -1)",
        "none of permission sets 1, 6, 19, 100, 101 is granted (granted: 2, 3)",
    ]
    chinese = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    page = superuser_client.get(
        reverse("admin:authorizers_authorizer_change", args=[merchant.pk]), **chinese
    ).content.decode()
    assert "公众号（订阅号） 须已认证（verify_type_info.id 为 -1）" in page
    assert "未授予权限集 1、6、19、100、101 中的任何一个（已授予：2, 3）" in page
    assert not any(reason in page for reason in english_reasons)
    deletions = superuser_client.get(reverse("admin:kfaccounts_deletionrequest_changelist"), **chinese).content.decode()
    assert "该商户不可使用此接口" in deletions and "已拒绝" in deletions
    assert "The merchant may not use this interface" not in deletions

    english = superuser_client.get(
        reverse("admin:authorizers_authorizer_change", args=[merchant.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert all(reason in english for reason in english_reasons)

    client = api_client_for(merchant)
    for language in ("zh-hans", "zh-CN,zh;q=0.9"):
        response = client.get("/api/v1/authorizer/", HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200
        assert [r["message"] for r in response.json()["reasons"]] == english_reasons
        assert response["Content-Language"] == "en"
    refused = client.post("/api/v1/deletions/", {"kf_account": "kf2@noodle"}, format="json", **chinese)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"].endswith(": " + "; ".join(english_reasons))


def test_an_audit_events_page_shows_every_time_in_beijing_time_even_inside_its_json_detail(superuser_client):
    from audit.models import AuditEvent

    event = AuditEvent.objects.create(
        actor_kind="system",
        action="deletion.deferred",
        detail={"until": "2026-03-04T16:04:05+00:00", "calls": [{"at": "2026-03-04T16:04:05.250Z"}], "note": "1999"},
    )
    AuditEvent.objects.filter(pk=event.pk).update(at=datetime(2026, 3, 4, 16, 4, 5, tzinfo=UTC))
    for language in ("en-US", "zh-CN"):
        html = superuser_client.get(
            reverse("admin:audit_auditevent_change", args=[event.pk]), HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
        # The event's own time (field and page title) and both times inside the detail, one format.
        assert html.count("2026-03-05 00:04:05") >= 4, language
        assert "+00:00" not in html
        assert "16:04:05" not in html
        assert "&quot;note&quot;: &quot;1999&quot;" in html  # a string that is no time stays as it is
    listing = superuser_client.get(reverse("admin:audit_auditevent_changelist")).content.decode()
    assert "2026-03-05 00:04:05" in listing and "16:04:05" not in listing
