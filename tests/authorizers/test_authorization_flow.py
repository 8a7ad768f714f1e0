"""GET /wechat/authorize/ and its callback, with WeChat faked at the HTTP edge."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from authorizers.models import Authorizer
from tests.authorizers.test_events import _fake_authorization
from tests.conftest import WECHAT


@pytest.mark.django_db
def test_authorize_redirects_to_the_componentloginpage_with_a_fresh_pre_auth_code(
    client, wechat, component_ready, settings
):
    wechat.post(
        f"{WECHAT}/cgi-bin/component/api_create_preauthcode",
        json={"pre_auth_code": "preauthcode@@@xyz", "expires_in": 600},
    )
    response = client.get("/wechat/authorize/")
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage"
    )
    query = parse_qs(location.query)
    assert query["pre_auth_code"] == ["preauthcode@@@xyz"]
    assert query["component_appid"] == [settings.WECHAT_COMPONENT_APPID]
    assert query["redirect_uri"] == ["http://testserver/wechat/authorize/callback/"]
    assert query["auth_type"] == [str(settings.WECHAT_AUTH_TYPE)]
    (call,) = wechat.calls
    assert "component_access_token=COMPONENT_TOKEN" in call.request.url


@pytest.mark.django_db
def test_authorize_without_a_ticket_says_not_ready(client, wechat):
    response = client.get("/wechat/authorize/")
    assert response.status_code == 503
    assert not wechat.calls


@pytest.mark.django_db
def test_callback_stores_the_merchant_with_its_permission_sets_and_encrypted_tokens(client, wechat, component_ready):
    _fake_authorization(wechat, "wxcccccccccccccccc", [1, 6])
    response = client.get("/wechat/authorize/callback/?auth_code=queryauthcode@@@abc&expires_in=600")
    assert response.status_code == 200
    assert b"Authorization complete" in response.content
    merchant = Authorizer.objects.get(appid="wxcccccccccccccccc")
    assert merchant.func_ids == [1, 6]
    assert merchant.is_certified and merchant.kind == "service"
    assert merchant.refresh_token_ciphertext.startswith("v1:")
    assert "RT_SECRET" not in merchant.refresh_token_ciphertext
    assert "AT_SECRET" not in merchant.access_token_ciphertext
    assert b"RT_SECRET" not in response.content and b"AT_SECRET" not in response.content


@pytest.mark.django_db
def test_callback_without_code_is_a_400(client, wechat):
    assert client.get("/wechat/authorize/callback/").status_code == 400
    assert not wechat.calls


@pytest.mark.django_db
def test_callback_with_a_code_wechat_rejects_is_a_4xx_and_stores_nothing(client, wechat, component_ready):
    wechat.post(f"{WECHAT}/cgi-bin/component/api_query_auth", json={"errcode": 61009, "errmsg": "code is invalid"})
    response = client.get("/wechat/authorize/callback/?auth_code=bogus")
    assert response.status_code == 400
    assert not Authorizer.objects.exists()
