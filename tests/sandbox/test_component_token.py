from __future__ import annotations

import re

from sandbox.state import TICKET_VALIDITY, TOKEN_OVERLAP

from .conftest import Client, FakeClock

TOKEN_PATH = "/cgi-bin/component/api_component_token"
PREAUTH_PATH = "/cgi-bin/component/api_create_preauthcode"


def _token_request(client: Client, **overrides: str) -> dict:
    body = {
        "component_appid": client.config.component_appid,
        "component_appsecret": client.config.component_appsecret,
        "component_verify_ticket": client.ticket(),
        **overrides,
    }
    return client.post(TOKEN_PATH, body).json()


def _preauth(client: Client, token: str, name: str = "component_access_token") -> dict:
    return client.post(PREAUTH_PATH, {"component_appid": client.config.component_appid}, **{name: token}).json()


def test_component_token_is_issued_for_a_pushed_ticket(client: Client) -> None:
    answer = _token_request(client)
    assert set(answer) == {"component_access_token", "expires_in"}
    assert answer["expires_in"] == 7200


def test_component_token_refuses_wrong_appid_secret_and_unknown_ticket(client: Client) -> None:
    assert _token_request(client, component_appid="wx0000000000000000")["errcode"] == 61011
    assert _token_request(client, component_appsecret="not-the-secret")["errcode"] == 40125
    assert _token_request(client, component_verify_ticket="ticket@@@made-up")["errcode"] == 61006


def test_ticket_older_than_12_hours_is_expired(client: Client, clock: FakeClock) -> None:
    ticket = client.ticket()
    clock.advance(TICKET_VALIDITY + 1)
    assert _token_request(client, component_verify_ticket=ticket)["errcode"] == 61005


def test_ticket_within_12_hours_still_works(client: Client, clock: FakeClock) -> None:
    ticket = client.ticket()
    clock.advance(TICKET_VALIDITY - 60)
    assert "component_access_token" in _token_request(client, component_verify_ticket=ticket)


def test_errors_are_http_200_json_with_a_rid(client: Client) -> None:
    response = client.post(TOKEN_PATH, {"component_appid": "wx0000000000000000"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert re.fullmatch(r"invalid component rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}", response.json()["errmsg"])


def test_component_apis_accept_the_token_under_either_query_name(client: Client) -> None:
    token = client.component_token()
    assert _preauth(client, token, "component_access_token")["expires_in"] == 600
    assert _preauth(client, token, "access_token")["pre_auth_code"].startswith("preauthcode@@@")


def test_component_token_missing_unknown_and_expired(client: Client, clock: FakeClock) -> None:
    assert client.post(PREAUTH_PATH, {"component_appid": client.config.component_appid}).json()["errcode"] == 41001
    assert _preauth(client, "not-a-token")["errcode"] == 40001
    token = client.component_token()
    clock.advance(7199)
    assert "pre_auth_code" in _preauth(client, token)
    clock.advance(1)
    assert _preauth(client, token)["errcode"] == 42001


def test_a_new_component_token_leaves_the_old_one_working_for_300_seconds(client: Client, clock: FakeClock) -> None:
    old = client.component_token()
    new = client.component_token()
    assert new != old
    clock.advance(TOKEN_OVERLAP - 1)
    assert "pre_auth_code" in _preauth(client, old)
    clock.advance(1)
    assert _preauth(client, old)["errcode"] == 40001
    assert "pre_auth_code" in _preauth(client, new)


def test_control_expire_makes_the_next_call_answer_42001(client: Client) -> None:
    token = client.component_token()
    assert client.control("POST", "/expire", {"what": "component"})["expired"] >= 1
    assert _preauth(client, token)["errcode"] == 42001


def test_wrong_component_appid_in_the_body_is_61011(client: Client) -> None:
    token = client.component_token()
    answer = client.post(PREAUTH_PATH, {"component_appid": "wx0000000000000000"}, component_access_token=token)
    assert answer.json()["errcode"] == 61011


def test_get_on_a_post_api_is_43002(client: Client) -> None:
    assert client.get(TOKEN_PATH).json()["errcode"] == 43002


def test_malformed_and_empty_bodies(client: Client) -> None:
    malformed = client.post(TOKEN_PATH, data=b"{not json", headers=None)
    assert malformed.json()["errcode"] == 47001
    assert malformed.json()["errmsg"].startswith("data format error rid: ")
    assert client.post(TOKEN_PATH, data=b"").json()["errcode"] == 44002
    assert client.post(TOKEN_PATH, data=b"[1, 2]").json()["errcode"] == 47001


def test_unknown_path_is_40066(client: Client) -> None:
    # wechatpy's getkflist URL lacks /cgi-bin (docs/wechat.md §9): WeChat answers invalid url.
    answer = client.get("/customservice/getkflist", access_token="x").json()
    assert answer["errcode"] == 40066
    assert answer["errmsg"].startswith("invalid url")


def test_start_push_ticket_checks_credentials(client: Client) -> None:
    path = "/cgi-bin/component/api_start_push_ticket"
    good = {"component_appid": client.config.component_appid, "component_secret": client.config.component_appsecret}
    assert client.post(path, good).json() == {"errcode": 0, "errmsg": "ok"}
    assert client.post(path, {**good, "component_secret": "nope"}).json()["errcode"] == 40125
    # This page answers 40013 for a wrong appid, not 61011 (docs/wechat.md §2).
    assert client.post(path, {**good, "component_appid": "wx0000000000000000"}).json()["errcode"] == 40013
