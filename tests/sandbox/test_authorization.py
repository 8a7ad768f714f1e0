from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from sandbox import seed
from sandbox.state import AUTH_CODE_TTL, PRE_AUTH_CODE_TTL, TOKEN_OVERLAP

from .conftest import Client, FakeClock, start_sandbox

PAGE = "/cgi-bin/componentloginpage"
CONFIRM = "/cgi-bin/componentloginpage/confirm"
REDIRECT = "http://127.0.0.1:8000/wechat/authorize/callback/"
# What a browser sends when it follows the platform page's link (strict-origin-when-cross-origin).
FROM_PLATFORM = {"Referer": "http://127.0.0.1:8000/"}


def _page(client: Client, code: str, *, path: str = PAGE, headers: dict[str, str] | None = FROM_PLATFORM, **extra: str):
    return client.get(
        path,
        headers=headers,
        component_appid=client.config.component_appid,
        pre_auth_code=code,
        redirect_uri=REDIRECT,
        auth_type="3",
        **extra,
    )


def _confirm(client: Client, code: str, appid: str, func: list[int], redirect_uri: str = REDIRECT):
    return client.post(
        CONFIRM,
        data={
            "component_appid": client.config.component_appid,
            "pre_auth_code": code,
            "redirect_uri": redirect_uri,
            "appid": appid,
            "func": [str(f) for f in func],
        },
    )


def _offered(html: str, appid: str) -> tuple[set[str], set[str]]:
    """(offered, ticked) permission sets of one account on the page."""
    offered = set(re.findall(rf'name="func_{appid}" value="(\d+)"', html))
    ticked = set(re.findall(rf'name="func_{appid}" value="(\d+)" id="func-{appid}-\d+" checked', html))
    return offered, ticked


def test_the_authorization_page_offers_each_account_its_own_kinds_permission_sets(client: Client) -> None:
    token = client.component_token()
    page = _page(client, client.pre_auth_code(token))
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert 'action="/cgi-bin/componentloginpage/confirm"' in html
    for appid in (seed.LOTUS_TEA, seed.CORNER_BAKERY, seed.HARBOR_LOGISTICS, seed.PANDA_PANTRY, seed.MAPLE_BOOKS):
        assert f'name="appid" value="{appid}"' in html
    # The Official Account and Mini Program tables are disjoint (docs/wechat.md §10); WeChat ticks
    # every set it offers, and never offers a Mini Program 1 or 6.
    official, official_ticked = _offered(html, seed.LOTUS_TEA)
    assert official == official_ticked == {"1", "2", "3", "4", "6", "7", "11", "15"}
    mini, mini_ticked = _offered(html, seed.PANDA_PANTRY)
    assert mini == mini_ticked == {"17", "18", "19", "25"}


def test_category_id_list_limits_the_sets_offered(client: Client) -> None:
    token = client.component_token()
    html = _page(client, client.pre_auth_code(token), category_id_list="1|6|19").text
    assert _offered(html, seed.LOTUS_TEA)[0] == {"1", "6"}
    assert _offered(html, seed.PANDA_PANTRY)[0] == {"19"}


def test_a_set_of_the_other_kinds_table_is_refused(client: Client) -> None:
    token = client.component_token()
    code = client.pre_auth_code(token)
    assert _confirm(client, code, seed.PANDA_PANTRY, [1, 6]).status_code == 400
    assert _confirm(client, code, seed.PANDA_PANTRY, [19]).status_code == 302


def test_a_redirect_uri_off_the_registered_domain_is_refused(clock: FakeClock) -> None:
    sandbox = start_sandbox(clock, authorization_domain="127.0.0.1:8000")
    client = Client(sandbox)
    try:
        token = client.component_token()
        code = client.pre_auth_code(token)
        refused = _confirm(client, code, seed.LOTUS_TEA, [1], redirect_uri="http://evil.example/cb/")
        assert refused.status_code == 400 and "redirect_uri" in refused.text
        page = client.get(
            PAGE,
            headers=FROM_PLATFORM,
            component_appid=client.config.component_appid,
            pre_auth_code=code,
            redirect_uri="http://127.0.0.1:9999/cb/",
        )
        assert page.status_code == 400
        client.control("POST", "/behaviour", {"check_redirect_domain": False})
        assert _confirm(client, code, seed.LOTUS_TEA, [1], redirect_uri="http://evil.example/cb/").status_code == 302
    finally:
        client.http.close()
        sandbox.shutdown()


def test_auth_type_and_biz_appid_narrow_the_accounts_shown(client: Client) -> None:
    token = client.component_token()
    official_only = client.get(
        PAGE,
        headers=FROM_PLATFORM,
        component_appid=client.config.component_appid,
        pre_auth_code=client.pre_auth_code(token),
        redirect_uri=REDIRECT,
        auth_type="1",
    ).text
    assert seed.LOTUS_TEA in official_only and seed.PANDA_PANTRY not in official_only
    one = _page(client, client.pre_auth_code(token), biz_appid=seed.HARBOR_LOGISTICS).text
    assert seed.HARBOR_LOGISTICS in one and seed.LOTUS_TEA not in one


def test_confirm_redirects_with_a_single_use_code(client: Client) -> None:
    token = client.component_token()
    code = client.pre_auth_code(token)
    answer = _confirm(client, code, seed.LOTUS_TEA, [1, 6, 15])
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location._replace(query="").geturl() == REDIRECT
    query = parse_qs(location.query)
    assert query["expires_in"] == ["600"]
    assert query["auth_code"][0].startswith("queryauthcode@@@")

    # The pre-auth code is spent: the page and a second confirmation both refuse it.
    assert _page(client, code).status_code == 400
    assert "已被使用" in _page(client, code).text
    assert _confirm(client, code, seed.LOTUS_TEA, [1]).status_code == 400


def test_redirect_mangles_the_redirect_uris_query_after_its_first_parameter(client: Client) -> None:
    """WeChat drops or &amp;-escapes a redirect_uri's query parameters after the first (docs/wechat.md §4)."""
    token = client.component_token()
    one = _confirm(client, client.pre_auth_code(token), seed.LOTUS_TEA, [1], redirect_uri=REDIRECT + "?state=abc")
    assert parse_qs(urlsplit(one.headers["Location"]).query).keys() == {"state", "auth_code", "expires_in"}

    escaped = _confirm(
        client, client.pre_auth_code(token), seed.LOTUS_TEA, [1], redirect_uri=REDIRECT + "?a=1&state=abc"
    )
    assert urlsplit(escaped.headers["Location"]).query.startswith("a=1&amp;state=abc&auth_code=")
    assert "state" not in parse_qs(urlsplit(escaped.headers["Location"]).query)

    client.control("POST", "/behaviour", {"redirect_query": "drop"})
    dropped = _confirm(
        client, client.pre_auth_code(token), seed.LOTUS_TEA, [1], redirect_uri=REDIRECT + "?a=1&state=abc"
    )
    assert parse_qs(urlsplit(dropped.headers["Location"]).query).keys() == {"a", "auth_code", "expires_in"}

    client.control("POST", "/behaviour", {"redirect_query": "keep"})
    kept = _confirm(client, client.pre_auth_code(token), seed.LOTUS_TEA, [1], redirect_uri=REDIRECT + "?a=1&state=abc")
    assert parse_qs(urlsplit(kept.headers["Location"]).query).keys() == {"a", "state", "auth_code", "expires_in"}


def test_page_refuses_unknown_and_expired_pre_auth_codes(client: Client, clock: FakeClock) -> None:
    token = client.component_token()
    assert _page(client, "preauthcode@@@made-up").status_code == 400
    code = client.pre_auth_code(token)
    clock.advance(PRE_AUTH_CODE_TTL)
    page = _page(client, code)
    assert page.status_code == 400 and "已过期" in page.text


def test_confirm_without_permission_sets_is_refused(client: Client) -> None:
    token = client.component_token()
    code = client.pre_auth_code(token)
    assert _confirm(client, code, seed.LOTUS_TEA, []).status_code == 400
    assert _page(client, code).status_code == 200  # a refused confirmation does not spend the code


def test_query_auth_gives_tokens_and_the_granted_sets(client: Client) -> None:
    token = client.component_token()
    redirect = _confirm(client, client.pre_auth_code(token), seed.LOTUS_TEA, [1, 6, 15]).headers["Location"]
    auth_code = parse_qs(urlsplit(redirect).query)["auth_code"][0]
    info = client.component("api_query_auth", {"authorization_code": auth_code}, token)["authorization_info"]
    assert info["authorizer_appid"] == seed.LOTUS_TEA
    assert info["expires_in"] == 7200
    assert info["authorizer_refresh_token"].startswith("refreshtoken@@@")
    assert info["func_info"] == [{"funcscope_category": {"id": n}} for n in (1, 6, 15)]
    # The same code arrives in the redirect and in the push, but WeChat honours it once.
    assert client.component("api_query_auth", {"authorization_code": auth_code}, token)["errcode"] == 61009


def test_query_auth_refuses_invalid_and_expired_codes(client: Client, clock: FakeClock) -> None:
    token = client.component_token()
    assert client.component("api_query_auth", {"authorization_code": "queryauthcode@@@x"}, token)["errcode"] == 61009
    auth = client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1]})
    clock.advance(AUTH_CODE_TTL)
    assert client.component("api_query_auth", {"authorization_code": auth["auth_code"]}, token)["errcode"] == 61010


def test_authorizer_token_refresh_rotates_the_refresh_token_with_a_five_minute_overlap(
    client: Client, clock: FakeClock
) -> None:
    info = client.authorize(seed.LOTUS_TEA)
    token = client.component_token()

    def refresh(refresh_token: str) -> dict:
        body = {"authorizer_appid": seed.LOTUS_TEA, "authorizer_refresh_token": refresh_token}
        return client.component("api_authorizer_token", body, token)

    first = info["authorizer_refresh_token"]
    refreshed = refresh(first)
    assert set(refreshed) == {"authorizer_access_token", "expires_in", "authorizer_refresh_token"}
    second = refreshed["authorizer_refresh_token"]
    assert second != first  # refresh tokens rotate (docs/wechat.md §6)
    old, new = info["authorizer_access_token"], refreshed["authorizer_access_token"]
    assert old != new
    clock.advance(TOKEN_OVERLAP - 1)
    assert "kf_list" in client.kf_list(old)
    assert refresh(first)["authorizer_refresh_token"] == second  # the old one still works, 300 s
    token = client.component_token()
    clock.advance(1)
    assert client.kf_list(old)["errcode"] == 40001
    assert "kf_list" in client.kf_list(new)
    assert refresh(first)["errcode"] == 61023
    assert "authorizer_access_token" in refresh(second)


def test_rotation_can_be_switched_off(client: Client) -> None:
    client.control("POST", "/behaviour", {"rotate_refresh_tokens": False})
    info = client.authorize(seed.LOTUS_TEA)
    token = client.component_token()
    body = {"authorizer_appid": seed.LOTUS_TEA, "authorizer_refresh_token": info["authorizer_refresh_token"]}
    assert (
        client.component("api_authorizer_token", body, token)["authorizer_refresh_token"]
        == body["authorizer_refresh_token"]
    )


def test_a_still_authorized_merchant_can_be_given_61023_and_recovered_from_its_info(client: Client) -> None:
    info = client.authorize(seed.LOTUS_TEA)
    token = client.component_token()
    held = info["authorizer_refresh_token"]
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/invalidate_refresh_token")
    body = {"authorizer_appid": seed.LOTUS_TEA, "authorizer_refresh_token": held}
    assert client.component("api_authorizer_token", body, token)["errcode"] == 61023
    current = client.component("api_get_authorizer_info", {"authorizer_appid": seed.LOTUS_TEA}, token)[
        "authorization_info"
    ]["authorizer_refresh_token"]
    listed = client.component("api_get_authorizer_list", {"offset": 0, "count": 500}, token)["list"]
    assert (
        current != held
        and {"authorizer_appid": seed.LOTUS_TEA, "refresh_token": current}.items()
        <= next(i for i in listed if i["authorizer_appid"] == seed.LOTUS_TEA).items()
    )
    assert "authorizer_access_token" in client.component(
        "api_authorizer_token", {**body, "authorizer_refresh_token": current}, token
    )


def test_authorizer_token_errors(client: Client) -> None:
    info = client.authorize(seed.LOTUS_TEA)
    token = client.component_token()

    def refresh(appid: str, refresh_token: str) -> dict:
        body = {"authorizer_appid": appid, "authorizer_refresh_token": refresh_token}
        return client.component("api_authorizer_token", body, token)

    assert refresh(seed.LOTUS_TEA, "refreshtoken@@@wrong")["errcode"] == 61023
    assert refresh(seed.HARBOR_LOGISTICS, "refreshtoken@@@x")["errcode"] == 61003  # never authorized
    client.control("POST", "/unauthorize", {"appid": seed.LOTUS_TEA})
    assert refresh(seed.LOTUS_TEA, info["authorizer_refresh_token"])["errcode"] == 61003


def test_reauthorization_invalidates_the_previous_refresh_token_and_code(client: Client) -> None:
    token = client.component_token()
    first = client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1]})
    info = client.component("api_query_auth", {"authorization_code": first["auth_code"]}, token)["authorization_info"]
    second = client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1, 6]})
    assert second["info_type"] == "updateauthorized"
    body = {"authorizer_appid": seed.LOTUS_TEA, "authorizer_refresh_token": info["authorizer_refresh_token"]}
    assert client.component("api_authorizer_token", body, token)["errcode"] == 61023
    assert client.component("api_query_auth", {"authorization_code": first["auth_code"]}, token)["errcode"] == 61009
    fresh = client.component("api_query_auth", {"authorization_code": second["auth_code"]}, token)
    assert fresh["authorization_info"]["authorizer_refresh_token"] != info["authorizer_refresh_token"]


def test_reauthorizing_with_the_same_sets_sends_no_update_event(client: Client) -> None:
    assert client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1, 6]})["info_type"] == "authorized"
    assert client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [6, 1]})["info_type"] is None


def test_control_authorize_spends_a_given_pre_auth_code(client: Client) -> None:
    token = client.component_token()
    code = client.pre_auth_code(token)
    answer = client.control(
        "POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1], "pre_auth_code": code, "redirect_uri": REDIRECT}
    )
    assert answer["pre_auth_code"] == code
    assert answer["redirect"].startswith(REDIRECT + "?auth_code=queryauthcode")
    again = client.http.post(
        client.url + "/sandbox/authorize", json={"appid": seed.LOTUS_TEA, "func": [1], "pre_auth_code": code}
    )
    assert again.status_code == 400


def test_authorizer_info_describes_the_account(client: Client) -> None:
    client.authorize(seed.LOTUS_TEA, [1, 6])
    client.authorize(seed.PANDA_PANTRY, [19])
    client.authorize(seed.CORNER_BAKERY, [1])
    token = client.component_token()

    def info(appid: str) -> dict:
        return client.component("api_get_authorizer_info", {"authorizer_appid": appid}, token)

    lotus = info(seed.LOTUS_TEA)
    assert lotus["authorizer_info"]["service_type_info"] == {"id": 0}
    assert lotus["authorizer_info"]["verify_type_info"] == {"id": 0}
    assert lotus["authorizer_info"]["alias"] == "lotustea"
    assert lotus["authorizer_info"]["user_name"].startswith("gh_")
    assert "MiniProgramInfo" not in lotus["authorizer_info"]
    assert lotus["authorization_info"]["authorizer_appid"] == seed.LOTUS_TEA
    assert lotus["authorization_info"]["func_info"] == [
        {"funcscope_category": {"id": 1}},
        {"funcscope_category": {"id": 6}},
    ]
    assert "MiniProgramInfo" in info(seed.PANDA_PANTRY)["authorizer_info"]
    assert info(seed.CORNER_BAKERY)["authorizer_info"]["verify_type_info"] == {"id": -1}
    assert info(seed.HARBOR_LOGISTICS)["errcode"] == 61003


def test_authorizer_list_pages_and_omits_unexchanged_refresh_tokens(client: Client, clock: FakeClock) -> None:
    client.authorize(seed.LOTUS_TEA)
    clock.advance(1)
    client.control("POST", "/authorize", {"appid": seed.HARBOR_LOGISTICS, "func": [1]})  # code never exchanged
    token = client.component_token()
    page = client.component("api_get_authorizer_list", {"offset": 0, "count": 500}, token)
    assert page["total_count"] == 2
    lotus, harbor = page["list"]
    assert lotus["authorizer_appid"] == seed.LOTUS_TEA and lotus["refresh_token"].startswith("refreshtoken@@@")
    assert harbor["authorizer_appid"] == seed.HARBOR_LOGISTICS and "refresh_token" not in harbor
    assert isinstance(lotus["auth_time"], int)
    second = client.component("api_get_authorizer_list", {"offset": 1, "count": 1}, token)
    assert [item["authorizer_appid"] for item in second["list"]] == [seed.HARBOR_LOGISTICS]


def test_unauthorize_kills_tokens_and_codes(client: Client) -> None:
    info = client.authorize(seed.LOTUS_TEA)
    answer = client.control("POST", "/unauthorize", {"appid": seed.LOTUS_TEA})
    assert answer["was_authorized"] is True
    assert client.kf_list(info["authorizer_access_token"])["errcode"] == 40001
    token = client.component_token()
    assert client.component("api_get_authorizer_info", {"authorizer_appid": seed.LOTUS_TEA}, token)["errcode"] == 61003
    assert client.control("POST", "/unauthorize", {"appid": seed.LOTUS_TEA})["was_authorized"] is False
    # Authorizing again does not bring the old token back.
    client.authorize(seed.LOTUS_TEA)
    assert client.kf_list(info["authorizer_access_token"])["errcode"] == 40001


def test_the_authorization_page_refuses_a_browser_that_sends_no_referer(client: Client) -> None:
    token = client.component_token()
    for path in (PAGE, "/wxaopen/safe/bindcomponent", "/safe/bindcomponent"):
        code = client.pre_auth_code(token)
        refused = _page(client, code, path=path, headers=None)
        assert refused.status_code == 403
        assert "授权入口页所在域名：空" in refused.text
        assert _page(client, code, path=path).status_code == 200  # the refusal did not spend the code


def test_the_authorization_page_refuses_a_referer_off_the_registered_domain(clock: FakeClock) -> None:
    from .conftest import start_sandbox

    sandbox = start_sandbox(clock, authorization_domain="http://127.0.0.1:8000")
    client = Client(sandbox)
    try:
        token = client.component_token()
        code = client.pre_auth_code(token)
        for referer in ("http://127.0.0.1:9999/", "https://evil.example/wechat/authorize/", "not a url"):
            refused = _page(client, code, headers={"Referer": referer})
            assert refused.status_code == 403, referer
            assert "授权入口页所在域名" in refused.text
        assert _page(client, code, headers={"Referer": "http://127.0.0.1:8000/"}).status_code == 200
        assert _page(client, code, headers={"Referer": "http://127.0.0.1:8000/wechat/authorize/"}).status_code == 200
    finally:
        client.http.close()
        sandbox.shutdown()


def test_the_registered_domain_defaults_to_the_platform_the_sandbox_pushes_to() -> None:
    from sandbox.app import SandboxConfig

    assert SandboxConfig(push_url="http://127.0.0.1:8000/wechat/component/events/").registered_domain() == (
        "127.0.0.1:8000"
    )
    assert SandboxConfig(authorization_domain="kf.example.com").registered_domain() == "kf.example.com"
    assert SandboxConfig().registered_domain() is None


def test_an_authorization_code_is_honoured_once(client: Client) -> None:
    token = client.component_token()
    auth = client.control("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": [1, 6]})
    first = client.component("api_query_auth", {"authorization_code": auth["auth_code"]}, token)
    assert first["authorization_info"]["authorizer_appid"] == seed.LOTUS_TEA
    second = client.component("api_query_auth", {"authorization_code": auth["auth_code"]}, token)
    assert second["errcode"] == 61009
