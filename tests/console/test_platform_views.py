"""The console with several platforms (issue 19): a platform column and filter on every
merchant-scoped list, a health block per platform, the authorization link of each platform. With one
platform the pages look as before: no column, no filter."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from authorizers.alerts import alert_raise
from authorizers.models import PlatformAlert
from kfaccounts.models import DeletionRequest, KfAccount
from tests.conftest import PLATFORM_B

pytestmark = pytest.mark.django_db

B = PLATFORM_B["component_appid"]
LISTS = [
    "authorizers_authorizer",
    "kfaccounts_kfaccount",
    "kfaccounts_deletionrequest",
    "authorizers_apikey",
    "authorizers_componentevent",
    "webhooks_webhookendpoint",
    "cleanup_cleanuprule",
]


def _changelist(name: str) -> str:
    return reverse(f"admin:{name}_changelist")


@pytest.mark.parametrize("name", LISTS)
def test_one_platform_shows_no_platform_column_or_filter(superuser_client, shop, name):
    page = superuser_client.get(_changelist(name)).content.decode()
    assert "?platform=" not in page and "column-platform_shown" not in page


@pytest.fixture
def two_shops(shop, make_authorizer, platform_b):
    theirs = make_authorizer(appid=shop.appid, nickname="Tea House via B", platform=platform_b)
    now = timezone.now()
    KfAccount.objects.create(authorizer=theirs, kf_account="kfb@teahouse", last_seen_at=now)
    DeletionRequest.objects.create(authorizer=theirs, kf_account="oldb@teahouse", requested_by_kind="system")
    return shop, theirs


@pytest.mark.parametrize(
    ("name", "ours", "theirs"),
    [
        ("authorizers_authorizer", "Tea House 茶馆", "Tea House via B"),
        ("kfaccounts_kfaccount", "kf1@teahouse", "kfb@teahouse"),
        ("kfaccounts_deletionrequest", "old1@teahouse", "oldb@teahouse"),
    ],
)
def test_several_platforms_add_a_platform_column_and_filter(superuser_client, two_shops, name, ours, theirs):
    page = superuser_client.get(_changelist(name)).content.decode()
    assert "column-platform_shown" in page and PLATFORM_B["name"] in page
    assert f"?platform={B}" in page  # the filter's choice
    only_b = superuser_client.get(_changelist(name) + f"?platform={B}").content.decode()
    assert theirs in only_b and ours not in only_b


def test_the_dashboard_has_a_health_block_per_platform(superuser_client, two_shops, settings):
    alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED, component_appid=B)
    page = superuser_client.get("/admin/").content.decode()
    assert f'data-platform="{settings.WECHAT_COMPONENT_APPID}"' in page and f'data-platform="{B}"' in page
    blocked = page.split(f'data-platform-blocked="{B}"')[1].split("</td>")[0]
    assert "/admin/authorizers/platformalert/" in blocked
    ours = page.split(f'data-platform-blocked="{settings.WECHAT_COMPONENT_APPID}"')[1].split("</td>")[0]
    assert "platformalert" not in ours
    # The banner names the platform of an alert that is not the default one's.
    assert f"<code>{B}</code>" in page


def test_the_authorization_link_page_makes_each_platforms_link(superuser_client, two_shops, settings):
    url = reverse("admin:authorizers_authorizer_authorization_link")
    default = superuser_client.get(url).content.decode()
    assert 'name="platform"' in default and "/wechat/authorize/" in default
    theirs = superuser_client.get(f"{url}?platform={B}&biz_appid={two_shops[1].appid}").content.decode()
    assert f"/wechat/platforms/{B}/authorize/?biz_appid={two_shops[1].appid}" in theirs
    assert "Tea House via B" in theirs  # the merchant named is B's authorization
    # The merchant page's "authorize again" link keeps the platform.
    change = superuser_client.get(reverse("admin:authorizers_authorizer_change", args=[two_shops[1].pk]))
    assert f"platform={B}" in change.content.decode()


def test_the_authorization_link_page_has_no_platform_choice_with_one_platform(superuser_client, shop):
    page = superuser_client.get(reverse("admin:authorizers_authorizer_authorization_link")).content.decode()
    assert 'name="platform"' not in page
