from __future__ import annotations

import re

import pytest

from sandbox import seed
from sandbox.state import MAX_KF_ACCOUNTS

from .conftest import START, Client, FakeClock

DEL = "/customservice/kfaccount/del"
ADD = "/customservice/kfaccount/add"
LIST = "/cgi-bin/customservice/getkflist"
RID = r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}"


def test_getkflist_shows_bound_invited_and_expired_accounts(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    kf_list = client.kf_list(token)["kf_list"]
    by_account = {k["kf_account"]: k for k in kf_list}
    assert list(by_account) == ["alice@lotustea", "bob@lotustea", "carol@lotustea"]
    alice, bob, carol = by_account.values()
    assert alice["kf_wx"] == "alice_wx" and "invite_wx" not in alice
    assert isinstance(alice["kf_id"], str) and alice["kf_id"].isdigit()
    assert bob["invite_status"] == "waiting" and bob["invite_wx"] == "bob_wx"
    assert isinstance(bob["invite_expire_time"], int) and bob["invite_expire_time"] > START
    assert carol["invite_status"] == "expired" and carol["invite_expire_time"] < START
    assert set(alice) == {"kf_account", "kf_headimgurl", "kf_id", "kf_nick", "kf_wx"}


def test_a_waiting_invitation_reads_expired_once_its_time_passes(client: Client, clock: FakeClock) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    clock.advance(3 * 86400)
    token = client.authorizer_token(seed.LOTUS_TEA)
    bob = next(k for k in client.kf_list(token)["kf_list"] if k["kf_account"] == "bob@lotustea")
    assert bob["invite_status"] == "expired"


def test_delete_removes_the_account_and_a_second_delete_is_65401(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_del(token, "alice@lotustea") == {"errcode": 0, "errmsg": "ok"}
    assert "alice@lotustea" not in [k["kf_account"] for k in client.kf_list(token)["kf_list"]]
    again = client.kf_del(token, "alice@lotustea")
    assert again["errcode"] == 65401
    assert re.fullmatch("invalid custom service account" + RID, again["errmsg"])


def test_delete_accepts_the_legacy_query_string_form(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    # wechatpy sends GET with an unescaped @; EasyWeChat 5 sends POST with an empty JSON body.
    raw = client.http.get(f"{client.url}{DEL}?access_token={token}&kf_account=alice@lotustea", timeout=5)
    assert raw.json() == {"errcode": 0, "errmsg": "ok"}
    assert client.post(DEL, {}, access_token=token, kf_account="bob@lotustea").json()["errcode"] == 0
    assert client.post(DEL, access_token=token, kf_account="carol@lotustea").json()["errcode"] == 0
    assert client.kf_list(token)["kf_list"] == []


def test_delete_with_a_malformed_body_is_47001_after_the_token_checks(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.post(DEL, data=b"{oops", access_token=token).json()["errcode"] == 47001
    assert client.post(DEL, data=b"{oops", access_token="nope").json()["errcode"] == 40001


def test_token_checks_come_first(client: Client, clock: FakeClock) -> None:
    assert client.post(DEL, {"kf_account": "alice@lotustea"}).json()["errcode"] == 41001
    assert client.kf_del("not-a-token", "alice@lotustea")["errcode"] == 40001
    token = client.authorizer_token(seed.LOTUS_TEA)
    clock.advance(7200)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 42001


def test_control_expire_makes_an_authorizer_token_answer_42001(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", "/expire", {"what": "authorizer", "appid": seed.LOTUS_TEA})
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 42001


def test_a_component_token_is_not_an_authorizer_token(client: Client) -> None:
    assert client.kf_del(client.component_token(), "alice@lotustea")["errcode"] == 40001


def test_revoked_account_tokens_answer_40001(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", "/unauthorize", {"appid": seed.LOTUS_TEA})
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 40001


def test_uncertified_official_account_is_48001(client: Client) -> None:
    token = client.authorizer_token(seed.CORNER_BAKERY)
    answer = client.kf_del(token, "help@cornerbakery")
    assert answer["errcode"] == 48001
    assert answer["errmsg"].startswith("api unauthorized rid: ")
    assert client.kf_list(token)["errcode"] == 48001


def test_mini_program_may_use_the_kf_apis(client: Client) -> None:
    token = client.authorizer_token(seed.PANDA_PANTRY, [19])
    assert client.kf_del(token, "service@pandapantry") == {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize("func", [[2, 3, 11, 15]])
def test_without_a_kf_permission_set_it_is_61007(client: Client, func: list[int]) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA, func)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 61007


@pytest.mark.parametrize("kf_set", [1, 6, 19, 100, 101])
def test_any_kf_permission_set_is_enough(client: Client, kf_set: int) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA, [3, kf_set])
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0


def test_account_without_new_kf_is_65400(client: Client) -> None:
    token = client.authorizer_token(seed.MAPLE_BOOKS)
    for answer in (client.kf_del(token, "x@maplebooks"), client.kf_list(token), client.kf_add(token, "x@maplebooks")):
        assert answer["errcode"] == 65400
        assert answer["errmsg"].startswith("please enable new custom service")


def test_add_creates_an_account_with_a_new_kf_id(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_add(token, "dave@lotustea", "Dave 小戴") == {"errcode": 0, "errmsg": "ok"}
    dave = client.kf_list(token)["kf_list"][-1]
    assert dave["kf_account"] == "dave@lotustea" and dave["kf_nick"] == "Dave 小戴"
    assert int(dave["kf_id"]) > max(int(k["kf_id"]) for k in client.kf_list(token)["kf_list"][:-1])


@pytest.mark.parametrize(
    ("kf_account", "nickname", "errcode"),
    [
        ("dave@otheraccount", "Dave", 65404),  # suffix must be the account's WeChat ID
        ("no-at-sign", "Dave", 65404),
        ("waytoolongprefix@lotustea", "Dave", 65404),
        ("dave@lotustea", "", 65403),
        ("dave@lotustea", "a nickname far too long", 65403),
        ("alice@lotustea", "Alice", 65406),
    ],
)
def test_add_validates_like_wechat(client: Client, kf_account: str, nickname: str, errcode: int) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_add(token, kf_account, nickname)["errcode"] == errcode


def test_add_refuses_the_101st_account(client: Client) -> None:
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/kf", {"generate": MAX_KF_ACCOUNTS - 3, "prefix": "k"})
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_add(token, "extra@lotustea")["errcode"] == 65405


def test_add_is_impossible_without_a_wechat_id(client: Client) -> None:
    token = client.authorizer_token(seed.PANDA_PANTRY, [19])
    assert client.kf_add(token, "help@pandapantry")["errcode"] == 65404


def test_daily_quota_answers_45009_once_spent(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "del", "daily_limit": 2})
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0
    assert client.kf_del(token, "nobody@lotustea")["errcode"] == 65401  # a failed call still costs quota
    answer = client.kf_del(token, "bob@lotustea")
    assert answer["errcode"] == 45009
    assert answer["errmsg"].startswith("reach max api daily quota limit rid: ")
    assert "kf_list" in client.kf_list(token)  # quotas are per API
    client.control("POST", "/quota/reset")
    assert client.kf_del(token, "bob@lotustea")["errcode"] == 0


def test_quota_is_per_authorizer(client: Client) -> None:
    lotus = client.authorizer_token(seed.LOTUS_TEA)
    harbor = client.authorizer_token(seed.HARBOR_LOGISTICS)
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "del", "used": 100_000})
    assert client.kf_del(lotus, "alice@lotustea")["errcode"] == 45009
    assert client.kf_del(harbor, "dispatch@harborlogistics")["errcode"] == 0


def test_quota_resets_at_midnight_beijing_time(client: Client, clock: FakeClock) -> None:
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "del", "daily_limit": 1, "used": 1})
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 45009
    beijing_seconds_today = (clock.now + 8 * 3600) % 86400
    clock.advance(86400 - beijing_seconds_today)
    token = client.authorizer_token(seed.LOTUS_TEA)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0


def test_get_api_quota_and_clear_quota(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.kf_del(token, "alice@lotustea")
    quota = client.post("/cgi-bin/openapi/quota/get", {"cgi_path": DEL}, access_token=token).json()
    assert quota["quota"] == {"daily_limit": 100_000, "used": 1, "remain": 99_999}
    # The per-minute limits, as the get_api_quota page shows them (docs/wechat.md §12).
    assert quota["rate_limit"] == quota["component_rate_limit"] == {"call_count": 20_000, "refresh_second": 60}
    cleared = client.post("/cgi-bin/clear_quota", {"appid": seed.LOTUS_TEA}, access_token=token).json()
    assert cleared == {"errcode": 0, "errmsg": "ok"}
    quota = client.post("/cgi-bin/openapi/quota/get", {"cgi_path": DEL}, access_token=token).json()
    assert quota["quota"]["used"] == 0
    for _ in range(9):
        client.post("/cgi-bin/clear_quota", {"appid": seed.LOTUS_TEA}, access_token=token)
    assert client.post("/cgi-bin/clear_quota", {"appid": seed.LOTUS_TEA}, access_token=token).json()["errcode"] == 48006


def test_clear_quota_is_for_certified_accounts_only(client: Client) -> None:
    token = client.authorizer_token(seed.CORNER_BAKERY)  # an uncertified subscription account
    answer = client.post("/cgi-bin/clear_quota", {"appid": seed.CORNER_BAKERY}, access_token=token).json()
    assert answer["errcode"] == 48001


def test_the_per_minute_limit_answers_45011_until_the_next_wall_clock_minute(client: Client, clock) -> None:
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "del", "minute_limit": 2})
    clock.advance(60 - clock.now % 60)  # the start of a minute
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/kf", {"generate": 4, "prefix": "m"})
    codes = [client.kf_del(token, f"m{i}@lotustea")["errcode"] for i in range(1, 4)]
    assert codes == [0, 0, 45011]
    clock.advance(59)  # still the same minute: "retry next minute", not within this one
    assert client.kf_del(token, "m3@lotustea")["errcode"] == 45011
    clock.advance(1)
    assert client.kf_del(token, "m3@lotustea")["errcode"] == 0
    quota = client.post("/cgi-bin/openapi/quota/get", {"cgi_path": DEL}, access_token=token).json()
    assert quota["rate_limit"] == {"call_count": 2, "refresh_second": 60}
    assert quota["quota"]["used"] == 3  # a 45011 is not charged to the daily quota


def test_exhaust_minute_refuses_the_rest_of_this_minute_only(client: Client, clock) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "del", "exhaust_minute": True})
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 45011
    clock.advance(60 - clock.now % 60)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0
