"""Each platform's URLs (issue 19): /wechat/platforms/<component_appid>/events/ and /authorize/…,
verified with that platform's keys; the older paths keep serving the default platform."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from audit.services import Actor
from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential, ComponentEvent
from authorizers.platforms import platform_retire
from authorizers.tokens import authorizer_ctx
from devtools import authpage
from tests.authorizers.test_events import _fake_authorization
from tests.conftest import PLATFORM_B, WECHAT
from tests.pushes import encrypted_push, push_xml

pytestmark = pytest.mark.django_db

B = PLATFORM_B["component_appid"]
B_URL = f"/wechat/platforms/{B}/events/"
DEFAULT_URL = "/wechat/component/events/"
B_KEYS = {"token": PLATFORM_B["token"], "aes_key": PLATFORM_B["aes_key"], "appid": B}
PREAUTH = f"{WECHAT}/cgi-bin/component/api_create_preauthcode"
QUERY_AUTH = f"{WECHAT}/cgi-bin/component/api_query_auth"


def post(client, url: str, query: str, body: bytes):
    return client.generic("POST", f"{url}?{query}", body, content_type="text/xml")


def ticket(appid: str, value: str) -> bytes:
    # A second ahead: newer than the ticket the fixtures stored "now".
    return push_xml(
        AppId=appid, CreateTime=int(time.time()) + 1, InfoType="component_verify_ticket", ComponentVerifyTicket=value
    )


def unauthorized(component_appid: str, appid: str) -> bytes:
    return push_xml(AppId=component_appid, CreateTime=int(time.time()), InfoType="unauthorized", AuthorizerAppid=appid)


def _ticket_of(appid: str) -> str | None:
    credential = ComponentCredential.objects.filter(component_appid=appid).first()
    return credential.verify_ticket_ciphertext if credential else None


def test_a_platforms_push_is_read_with_its_own_keys_and_recorded_as_its_own(client, platform_b):
    before = _ticket_of(B)
    response = post(client, B_URL, *encrypted_push(ticket(B, "ticket@@@B-new"), **B_KEYS))
    assert (response.status_code, response.content) == (200, b"success")
    assert _ticket_of(B) != before
    event = ComponentEvent.objects.get()
    assert event.platform == platform_b and "ticket@@@B-new" not in str(event.fields)
    assert _ticket_of(settings.WECHAT_COMPONENT_APPID) is None  # the default platform got nothing


def test_the_default_platform_answers_on_its_old_path_and_on_its_platform_path(client, platform_b):
    default = settings.WECHAT_COMPONENT_APPID
    assert post(client, DEFAULT_URL, *encrypted_push(ticket(default, "t1"))).content == b"success"
    assert (
        post(client, f"/wechat/platforms/{default}/events/", *encrypted_push(ticket(default, "t2"))).status_code == 200
    )
    assert {e.platform.component_appid for e in ComponentEvent.objects.all()} == {default}


@pytest.mark.parametrize(
    ("keys", "status"),
    [
        # Signed with B's token (and encrypted with B's key, for B): the signature fails on A's URL.
        (B_KEYS, 403),
        # Signed with B's token, encrypted with A's key and naming A: the signature still fails.
        ({"token": PLATFORM_B["token"]}, 403),
        # Signed with A's token but encrypted with B's key for B: the envelope names B.
        ({"aes_key": PLATFORM_B["aes_key"], "appid": B}, 403),
    ],
)
def test_a_push_made_with_another_platforms_keys_is_refused_and_changes_nothing(
    client, platform_b, make_authorizer, keys, status
):
    merchant = make_authorizer()
    default = settings.WECHAT_COMPONENT_APPID
    for body in (
        ticket(keys.get("appid", default), "stolen"),
        unauthorized(keys.get("appid", default), merchant.appid),
    ):
        response = post(client, DEFAULT_URL, *encrypted_push(body, **keys))
        assert response.status_code == status, response.content
        assert response.content.startswith((b"rejected", b"AppId"))
    merchant.refresh_from_db()
    assert merchant.status == AuthorizerStatus.ACTIVE
    assert not ComponentEvent.objects.exists() and _ticket_of(default) is None


def test_a_push_to_bs_url_encrypted_for_another_appid_is_refused(client, platform_b):
    # B's token and key, but the ciphertext carries the default platform's appid inside.
    keys = {**B_KEYS, "appid": settings.WECHAT_COMPONENT_APPID}
    response = post(client, B_URL, *encrypted_push(ticket(settings.WECHAT_COMPONENT_APPID, "x"), **keys))
    assert response.status_code == 403
    # An AppId in the plaintext that is not B's is refused as well.
    query, body = encrypted_push(ticket(settings.WECHAT_COMPONENT_APPID, "y"), **B_KEYS)
    assert post(client, B_URL, query, body).status_code == 403
    assert not ComponentEvent.objects.exists()


def test_an_unknown_or_retired_platform_is_refused(client, platform_b):
    assert post(client, "/wechat/platforms/wx0000000000000404/events/", "a=1", b"<xml/>").status_code == 404
    platform_retire(platform=platform_b, actor=Actor.system("test"))
    response = post(client, B_URL, *encrypted_push(ticket(B, "late"), **B_KEYS))
    assert response.status_code == 410 and not ComponentEvent.objects.exists()
    assert client.get(f"/wechat/platforms/{B}/authorize/").status_code == 410
    assert client.get("/wechat/platforms/wx0000000000000404/authorize/").status_code == 404


def test_unauthorized_on_one_platform_revokes_nothing_of_another(client, platform_b, make_authorizer):
    ours = make_authorizer()
    response = post(client, B_URL, *encrypted_push(unauthorized(B, ours.appid), **B_KEYS))
    assert response.status_code == 200
    ours.refresh_from_db()
    assert ours.status == AuthorizerStatus.ACTIVE
    assert ComponentEvent.objects.get().state == ComponentEvent.State.IGNORED


# --- the authorization flow of a platform ------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_platforms_authorization_page_and_callback_use_its_credentials(client, wechat, platform_b):
    wechat.post(PREAUTH, json={"pre_auth_code": "preauthcode@@@B", "expires_in": 600})
    page = client.get(f"/wechat/platforms/{B}/authorize/")
    assert page.status_code == 200 and PLATFORM_B["name"].encode() in page.content
    (preauth,) = wechat.calls
    assert preauth.request.url.endswith("component_access_token=COMPONENT_TOKEN_B")
    query = _query(authpage.page_links(page.content.decode())["authorize-pc"]["href"])
    assert query["component_appid"] == B and query["pre_auth_code"] == "preauthcode@@@B"
    redirect = urlsplit(query["redirect_uri"])
    assert redirect.path.startswith(f"/wechat/platforms/{B}/authorize/callback/")

    appid = "wxbbbbbbbbbbbbbbb2"
    _fake_authorization(wechat, appid, [1, 6])
    done = client.get(f"{redirect.path}?auth_code=queryauthcode@@@B&expires_in=600")
    assert done.status_code == 200, done.content
    exchange = next(c for c in wechat.calls if c.request.url.split("?")[0] == QUERY_AUTH)
    assert exchange.request.url.endswith("component_access_token=COMPONENT_TOKEN_B")
    assert json.loads(exchange.request.body)["component_appid"] == B
    merchant = Authorizer.objects.get(appid=appid)
    assert merchant.platform == platform_b and merchant.status == AuthorizerStatus.ACTIVE
    # Its tokens are bound to platform B.
    from authorizers import fieldcrypto

    assert (
        fieldcrypto.decrypt(merchant.access_token_ciphertext, context=authorizer_ctx(appid, "access_token", platform_b))
        == "AT_SECRET"
    )


def test_a_state_issued_for_one_platform_is_refused_on_anothers_callback(client, wechat, platform_b, component_ready):
    wechat.post(PREAUTH, json={"pre_auth_code": "preauthcode@@@A", "expires_in": 600})
    page = client.get("/wechat/authorize/")
    redirect = urlsplit(_query(authpage.page_links(page.content.decode())["authorize-pc"]["href"])["redirect_uri"])
    state = redirect.path.rstrip("/").rsplit("/", 1)[1]
    calls = len(wechat.calls)
    wrong = client.get(f"/wechat/platforms/{B}/authorize/callback/{state}/?auth_code=code@@@x")
    assert wrong.status_code == 400 and b"another platform" in wrong.content
    assert len(wechat.calls) == calls  # refused before any call to WeChat
