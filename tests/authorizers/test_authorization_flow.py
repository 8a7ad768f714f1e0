"""GET /wechat/authorize/ (the platform's page), the staff link page and the callback, WeChat faked at HTTP."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing

from audit.services import Actor
from authorizers import authorization, services
from authorizers.models import AuthorizationCodeExchange, Authorizer, ComponentEvent
from devtools import authpage
from tests.authorizers.test_events import _authorized_push, _fake_authorization, post
from tests.conftest import WECHAT
from tests.pushes import encrypted_push

PREAUTH = f"{WECHAT}/cgi-bin/component/api_create_preauthcode"
QUERY_AUTH = f"{WECHAT}/cgi-bin/component/api_query_auth"
APPID = "wxcccccccccccccccc"


def _preauth(wechat, code: str = "preauthcode@@@xyz") -> None:
    wechat.post(PREAUTH, json={"pre_auth_code": code, "expires_in": 600})


def _links(response) -> dict[str, dict[str, str]]:
    return authpage.page_links(response.content.decode())


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _redirect_uri(client, wechat) -> str:
    """A redirect_uri as the platform's page hands it to WeChat (with its one-time state)."""
    _preauth(wechat)
    page = client.get("/wechat/authorize/")
    assert page.status_code == 200, page.content
    return _query(_links(page)["authorize-pc"]["href"])["redirect_uri"]


def _callback(client, redirect_uri: str, code: str = "queryauthcode@@@abc"):
    parts = urlsplit(redirect_uri)
    assert not parts.query  # state travels in the path (docs/wechat.md §4)
    return client.get(f"{parts.path}?auth_code={code}&expires_in=600")


def _query_auth_calls(wechat) -> list:
    return [c for c in wechat.calls if c.request.url.split("?")[0] == QUERY_AUTH]


# --- item 1: a page on the platform's own domain, with links WeChat accepts ------------------------


@pytest.mark.django_db
def test_authorize_is_a_page_whose_links_send_the_origin_to_wechats_pc_and_mobile_pages(
    client, wechat, component_ready, settings
):
    _preauth(wechat)
    response = client.get("/wechat/authorize/")

    assert response.status_code == 200  # a page, not a server-side redirect (which sends no Referer)
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["Cache-Control"] == "no-store"
    links = _links(response)
    pc, mobile = links["authorize-pc"], links["authorize-mobile"]
    for link in (pc, mobile):
        assert link["referrerpolicy"] == "strict-origin-when-cross-origin"
    pc_url = urlsplit(pc["href"])
    assert f"{pc_url.scheme}://{pc_url.netloc}{pc_url.path}" == f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage"
    query = _query(pc["href"])
    assert query["pre_auth_code"] == "preauthcode@@@xyz"
    assert query["component_appid"] == settings.WECHAT_COMPONENT_APPID
    assert query["auth_type"] == str(settings.WECHAT_AUTH_TYPE)
    assert query["redirect_uri"].startswith("http://testserver/wechat/authorize/callback/")
    assert not urlsplit(query["redirect_uri"]).query  # nothing WeChat could drop or &amp;-escape
    assert "biz_appid" not in query and "category_id_list" not in query
    # The H5 form for phones (docs/wechat.md §4), its base configurable like WECHAT_MP_BASE.
    assert mobile["href"].startswith(
        f"{settings.WECHAT_OPEN_BASE}/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&"
    )
    assert mobile["href"].endswith("#wechat_redirect")
    mobile_query = _query(mobile["href"].removesuffix("#wechat_redirect"))
    assert {k: mobile_query[k] for k in ("component_appid", "pre_auth_code", "redirect_uri", "auth_type")} == {
        k: query[k] for k in ("component_appid", "pre_auth_code", "redirect_uri", "auth_type")
    }
    (call,) = wechat.calls
    assert "component_access_token=COMPONENT_TOKEN" in call.request.url


@pytest.mark.django_db
def test_the_mobile_link_base_is_the_wechat_open_base_setting(client, wechat, component_ready, settings):
    settings.WECHAT_OPEN_BASE = "http://open.example.test"
    _preauth(wechat)
    mobile = _links(client.get("/wechat/authorize/"))["authorize-mobile"]["href"]
    assert mobile.startswith("http://open.example.test/wxaopen/safe/bindcomponent?")


@pytest.mark.django_db
def test_auth_type_or_biz_appid_is_chosen_by_the_link_and_never_both(client, wechat, component_ready):
    _preauth(wechat)
    official_only = _query(_links(client.get("/wechat/authorize/?auth_type=1"))["authorize-pc"]["href"])
    assert official_only["auth_type"] == "1" and "biz_appid" not in official_only

    # auth_type is always sent (WeChat marks it required); biz_appid is added and has priority.
    one_account = _query(
        _links(client.get(f"/wechat/authorize/?biz_appid={APPID}&auth_type=1"))["authorize-pc"]["href"]
    )
    assert (one_account["biz_appid"], one_account["auth_type"]) == (APPID, "1")
    default_type = _query(_links(client.get(f"/wechat/authorize/?biz_appid={APPID}"))["authorize-pc"]["href"])
    assert default_type["auth_type"] == "3"
    for value in ("4", "5", "6", "8"):  # the values of WeChat's current page
        assert (
            _query(_links(client.get(f"/wechat/authorize/?auth_type={value}"))["authorize-pc"]["href"])["auth_type"]
            == value
        )
    kf_only = _query(_links(client.get("/wechat/authorize/?auth_type=1&sets=kf"))["authorize-pc"]["href"])
    assert kf_only["category_id_list"] == "1|6|19"

    calls = len(wechat.calls)
    for bad in ("auth_type=7", "auth_type=x", "biz_appid=not-an-appid", "sets=everything"):
        assert client.get(f"/wechat/authorize/?{bad}").status_code == 400, bad
    assert len(wechat.calls) == calls  # refused before any pre-auth code was spent


@pytest.mark.django_db
def test_the_redirect_uri_is_built_from_public_base_url(client, wechat, component_ready, settings):
    settings.PUBLIC_BASE_URL = "https://kf.example.com"
    _preauth(wechat)
    redirect_uri = _query(_links(client.get("/wechat/authorize/"))["authorize-pc"]["href"])["redirect_uri"]
    assert urlsplit(redirect_uri).netloc == "kf.example.com"
    assert redirect_uri.startswith("https://kf.example.com/wechat/authorize/callback/")


@pytest.mark.django_db
def test_authorize_without_a_ticket_says_not_ready(client, wechat):
    response = client.get("/wechat/authorize/")
    assert response.status_code == 503
    assert not wechat.calls


@pytest.mark.django_db
def test_the_old_link_maker_address_leads_to_the_consoles_one_page(client, wechat, admin_user, settings):
    old = client.get(f"/wechat/authorize/link/?biz_appid={APPID}")
    assert old.status_code == 301
    assert old["Location"] == f"/admin/authorizers/authorizer/authorization-link/?biz_appid={APPID}"
    client.force_login(admin_user)
    settings.PUBLIC_BASE_URL = "https://kf.example.com"
    page = client.get(old["Location"])
    assert page.status_code == 200
    assert f"https://kf.example.com/wechat/authorize/?biz_appid={APPID}&amp;sets=kf".encode() in page.content
    both = client.get("/admin/authorizers/authorizer/authorization-link/?auth_type=2&biz_appid=" + APPID)
    assert f'?auth_type=2&amp;biz_appid={APPID}"'.encode() in both.content  # no longer exclusive
    assert not wechat.calls  # making a link spends no pre-auth code: the merchant's visit does
    assert authorization.authorize_page_url(
        base_url="https://kf.example.com", choice=authorization.AccountChoice(auth_type=2)
    ) == ("https://kf.example.com/wechat/authorize/?auth_type=2")


# --- item 6: one-time signed state, replayed codes, throttling ------------------------------------


@pytest.mark.django_db
def test_callback_stores_the_merchant_with_its_permission_sets_and_encrypted_tokens(client, wechat, component_ready):
    redirect_uri = _redirect_uri(client, wechat)
    _fake_authorization(wechat, APPID, [1, 6])
    response = _callback(client, redirect_uri)
    assert response.status_code == 200
    assert b"Authorization complete" in response.content
    assert response["Referrer-Policy"] == "no-referrer" and response["Cache-Control"] == "no-store"
    merchant = Authorizer.objects.get(appid=APPID)
    assert merchant.func_ids == [1, 6]
    assert merchant.is_certified and merchant.kind == "service"
    assert merchant.refresh_token_ciphertext.startswith("v1:")
    assert "RT_SECRET" not in merchant.refresh_token_ciphertext
    assert "AT_SECRET" not in merchant.access_token_ciphertext
    assert b"RT_SECRET" not in response.content and b"AT_SECRET" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "state",
    [
        pytest.param("", id="missing"),
        pytest.param("forged.state", id="forged"),
        pytest.param(signing.dumps({"n": "x"}, salt="another.salt"), id="signed-for-something-else"),
        pytest.param(signing.dumps({"n": "x"}, salt=authorization.STATE_SALT)[:-2] + "zz", id="tampered"),
    ],
)
def test_callback_without_a_valid_state_is_refused_before_any_call_to_wechat(client, wechat, component_ready, state):
    response = client.get(f"/wechat/authorize/callback/?state={state}&auth_code=queryauthcode@@@abc&expires_in=600")
    assert response.status_code == 400
    assert not wechat.calls
    assert not AuthorizationCodeExchange.objects.exists()


@pytest.mark.django_db
def test_the_old_query_string_form_of_the_state_still_works_and_a_forged_path_state_does_not(
    client, wechat, component_ready
):
    redirect_uri = _redirect_uri(client, wechat)
    state = urlsplit(redirect_uri).path.rstrip("/").rsplit("/", 1)[1]
    _fake_authorization(wechat, APPID, [1, 6])
    response = client.get(f"/wechat/authorize/callback/?state={state}&auth_code=queryauthcode@@@abc&expires_in=600")
    assert response.status_code == 200
    forged = client.get("/wechat/authorize/callback/forged.state/?auth_code=queryauthcode@@@x&expires_in=600")
    assert forged.status_code == 400


@pytest.mark.django_db
def test_an_expired_state_is_refused(client, wechat, component_ready, settings):
    redirect_uri = _redirect_uri(client, wechat)
    calls = len(wechat.calls)
    settings.WECHAT_AUTHORIZE_STATE_MAX_AGE = -1  # as if it had been issued longer ago than allowed
    response = _callback(client, redirect_uri)
    assert response.status_code == 400 and b"expired" in response.content
    assert len(wechat.calls) == calls


@pytest.mark.django_db
def test_a_state_is_good_for_one_callback_only(client, wechat, component_ready):
    redirect_uri = _redirect_uri(client, wechat)
    _fake_authorization(wechat, APPID, [1, 6])
    assert _callback(client, redirect_uri).status_code == 200
    calls = len(wechat.calls)
    replay = _callback(client, redirect_uri, code="queryauthcode@@@another")
    assert replay.status_code == 400 and b"used already" in replay.content
    assert len(wechat.calls) == calls


@pytest.mark.django_db
def test_a_code_replayed_with_a_fresh_state_is_refused(client, wechat, component_ready):
    _fake_authorization(wechat, APPID, [1, 6])
    assert _callback(client, _redirect_uri(client, wechat)).status_code == 200
    replay = _callback(client, _redirect_uri(client, wechat))  # same code, new valid state
    assert replay.status_code == 400 and b"used already" in replay.content
    assert len(_query_auth_calls(wechat)) == 1


@pytest.mark.django_db
def test_callback_without_code_is_a_400(client, wechat):
    assert client.get("/wechat/authorize/callback/").status_code == 400
    assert not wechat.calls


@pytest.mark.django_db
def test_callback_with_a_code_wechat_rejects_is_a_4xx_and_stores_nothing(client, wechat, component_ready):
    redirect_uri = _redirect_uri(client, wechat)
    wechat.post(QUERY_AUTH, json={"errcode": 61009, "errmsg": "code is invalid"})
    response = _callback(client, redirect_uri, code="bogus")
    assert response.status_code == 400
    assert not Authorizer.objects.exists()
    assert AuthorizationCodeExchange.objects.get().state == "failed"


@pytest.mark.django_db
def test_authorize_pages_are_throttled_per_client(client, wechat, component_ready, settings):
    settings.WECHAT_AUTHORIZE_RATE_LIMIT = "3/min"
    _preauth(wechat)
    statuses = [client.get("/wechat/authorize/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/wechat/authorize/callback/?auth_code=x&state=y")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert len(wechat.calls) == 3
    other = client.get("/wechat/authorize/", REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 200  # another client has its own budget


@pytest.mark.django_db
def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_alone(client, wechat, component_ready, settings):
    settings.WECHAT_AUTHORIZE_RATE_LIMIT = "3/min"
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    _preauth(wechat)

    def via_proxy(forwarded_for: str) -> int:
        return client.get("/wechat/authorize/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    # The noisy client spends its own budget; whatever it writes before its real address is ignored.
    noisy = [via_proxy(f"198.51.100.{n}, 203.0.113.7") for n in range(4)]
    assert noisy == [200, 200, 200, 429]
    # Everyone else behind the same proxy still gets through.
    assert via_proxy("203.0.113.8") == 200
    assert via_proxy("2001:db8::5") == 200


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored(client, wechat, component_ready, settings):
    settings.WECHAT_AUTHORIZE_RATE_LIMIT = "3/min"
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    _preauth(wechat)
    # A client talking to us directly cannot escape its budget by claiming to be someone new each time.
    statuses = [
        client.get("/wechat/authorize/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    # Nor, with no proxy configured (the default), can anyone at all.
    settings.TRUSTED_PROXIES = ()
    assert (
        client.get("/wechat/authorize/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="192.0.2.1").status_code
        == 429
    )


# --- item 2: each code is exchanged once, whichever path comes first -----------------------------


@pytest.mark.django_db
def test_the_push_wins_and_the_callback_shows_the_merchant_without_a_second_exchange(
    client, wechat, component_ready, django_capture_on_commit_callbacks
):
    redirect_uri = _redirect_uri(client, wechat)
    _fake_authorization(wechat, APPID, [1, 6])
    query, body = encrypted_push(_authorized_push(APPID, "queryauthcode@@@abc"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, query, body).content == b"success"
    assert ComponentEvent.objects.get(info_type="authorized").state == "processed"

    response = _callback(client, redirect_uri, code="queryauthcode@@@abc")

    assert response.status_code == 200
    assert b"Authorization complete" in response.content and APPID.encode() in response.content
    assert len(_query_auth_calls(wechat)) == 1  # WeChat honours a code once
    exchange = AuthorizationCodeExchange.objects.get()
    assert exchange.state == "succeeded" and exchange.authorizer is not None and exchange.authorizer.appid == APPID
    assert "queryauthcode" not in exchange.code_sha256  # only its digest is kept


@pytest.mark.django_db
def test_the_callback_wins_and_the_push_reuses_its_result(
    client, wechat, component_ready, django_capture_on_commit_callbacks
):
    _fake_authorization(wechat, APPID, [1, 6])
    assert _callback(client, _redirect_uri(client, wechat), code="queryauthcode@@@abc").status_code == 200
    query, body = encrypted_push(_authorized_push(APPID, "queryauthcode@@@abc"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, query, body).content == b"success"
    event = ComponentEvent.objects.get(info_type="authorized")
    assert event.state == "processed"
    assert len(_query_auth_calls(wechat)) == 1
    assert Authorizer.objects.get(appid=APPID).last_event_at == event.create_time


@pytest.mark.django_db
def test_a_code_being_exchanged_by_the_other_path_is_waited_for_not_exchanged_again(wechat, component_ready):
    digest = services._code_digest("queryauthcode@@@busy")
    from datetime import timedelta

    from django.utils import timezone

    AuthorizationCodeExchange.objects.create(code_sha256=digest, lease_expires_at=timezone.now() + timedelta(minutes=1))
    with pytest.raises(services.ExchangeInProgress):
        services.authorizer_authorize(authorization_code="queryauthcode@@@busy", actor=Actor.wechat(), wait=0.3)
    assert not wechat.calls


@pytest.mark.django_db
def test_a_transient_failure_releases_the_code_for_a_retry(wechat, component_ready):
    wechat.post(QUERY_AUTH, json={"errcode": -1, "errmsg": "system error"})
    with pytest.raises(services.Transient):
        services.authorizer_authorize(authorization_code="queryauthcode@@@again", actor=Actor.wechat())
    assert not AuthorizationCodeExchange.objects.exists()
    _fake_authorization(wechat, APPID, [1])
    wechat.replace("POST", QUERY_AUTH, json=_query_auth_body())
    assert (
        services.authorizer_authorize(authorization_code="queryauthcode@@@again", actor=Actor.wechat()).appid == APPID
    )


def _query_auth_body() -> dict:
    return {
        "authorization_info": {
            "authorizer_appid": APPID,
            "authorizer_access_token": "AT_SECRET",
            "expires_in": 7200,
            "authorizer_refresh_token": "RT_SECRET",
            "func_info": [{"funcscope_category": {"id": 1}}],
        }
    }
