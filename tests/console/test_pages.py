"""Every console page renders, and none of them shows a secret."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from authorizers.models import ApiKey, Authorizer, ComponentCredential
from tests.console.conftest import client_for

pytestmark = pytest.mark.django_db


def _every_admin_page(client) -> dict[str, str]:
    """The dashboard, and every registered model's changelist, change pages and add page (if any)."""
    pages = {"/admin/": ""}
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        pages[changelist] = ""
        for pk in model._default_manager.values_list("pk", flat=True)[:20]:
            pages[reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])] = ""
    pages[reverse("admin:authorizers_authorizer_authorization_link")] = ""
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        pages[url] = response.content.decode()
    return pages


def _secrets() -> list[str]:
    values = []
    for authorizer in Authorizer.objects.all():
        values += [f"ACCESS_{authorizer.appid}", f"REFRESH_{authorizer.appid}"]
        values += [authorizer.access_token_ciphertext, authorizer.refresh_token_ciphertext]
    for credential in ComponentCredential.objects.all():
        values += ["COMPONENT_TOKEN", "ticket@@@test"]
        values += [credential.access_token_ciphertext, credential.verify_ticket_ciphertext]
    values += [key.digest for key in ApiKey.objects.all()]
    return [v for v in values if v]


def test_no_token_key_digest_or_ciphertext_in_any_admin_page(superuser, shop, make_authorizer):
    make_authorizer(nickname="Second shop")
    secrets = _secrets()
    assert len(secrets) >= 9
    pages = _every_admin_page(client_for(superuser))
    assert len(pages) > 15
    for url, html in pages.items():
        for secret in secrets:
            assert secret not in html, f"a secret appears on {url}"


def test_the_authorization_link_page_gives_the_platforms_own_page_for_an_auth_type_or_one_merchant(
    viewer_client, shop, wechat
):
    url = reverse("admin:authorizers_authorizer_authorization_link")
    html = viewer_client.get(url + "?auth_type=1").content.decode()
    assert "/wechat/authorize/?auth_type=1" in html and "componentloginpage" in html and "bindcomponent" in html
    merchant_page = viewer_client.get(reverse("admin:authorizers_authorizer_change", args=[shop.pk])).content.decode()
    assert f"{url}?biz_appid={shop.appid}" in merchant_page
    one = viewer_client.get(url + f"?biz_appid={shop.appid}").content.decode()
    assert f"/wechat/authorize/?biz_appid={shop.appid}" in one and "Tea House" in one
    assert len(wechat.calls) == 0  # nothing asked of WeChat: the page makes its pre-auth code when opened


@pytest.mark.parametrize("query", ["?auth_type=7", "?biz_appid=nope", "?auth_type=x"])
def test_a_bad_choice_is_a_clear_400(viewer_client, query):
    response = viewer_client.get(reverse("admin:authorizers_authorizer_authorization_link") + query)
    assert response.status_code == 400
    assert b"/wechat/authorize/" not in response.content
