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


def test_the_authorization_link_page_gives_the_platform_link_and_fresh_pc_and_mobile_links(
    operator_client, component_ready, wechat
):
    from tests.conftest import WECHAT

    wechat.post(
        f"{WECHAT}/cgi-bin/component/api_create_preauthcode",
        json={"pre_auth_code": "preauthcode@@@abc", "expires_in": 600},
    )
    url = reverse("admin:authorizers_authorizer_authorization_link")
    plain = operator_client.get(url + "?auth_type=1").content.decode()
    assert "/wechat/authorize/?auth_type=1" in plain
    assert len(wechat.calls) == 0  # a pre-auth code only when asked for
    html = operator_client.get(url + "?auth_type=2&generate=1").content.decode()
    assert "/cgi-bin/componentloginpage?component_appid=" in html
    assert "/wxaopen/safe/bindcomponent?action=bindcomponent&amp;no_scan=1" in html
    assert "pre_auth_code=preauthcode%40%40%40abc" in html and "auth_type=2" in html
    assert "#wechat_redirect" in html


def test_viewers_cannot_make_authorization_links(viewer_client, component_ready, wechat):
    response = viewer_client.get(reverse("admin:authorizers_authorizer_authorization_link") + "?generate=1")
    assert response.status_code == 403
    assert len(wechat.calls) == 0
