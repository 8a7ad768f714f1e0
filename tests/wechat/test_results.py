import pytest

from wechat.client import (
    AuthorizationInfo,
    AuthorizerInfo,
    parse_authorization_info,
    parse_authorizer_info,
)
from wechat.errors import MalformedResponse, Transient

# wechatpy fixture api_query_auth.json (same shape as the doc example, docs/wechat.md §5)
QUERY_AUTH = {
    "authorization_info": {
        "authorizer_appid": "wxf8b4f85f3a794e77",
        "authorizer_access_token": "QXjUqNqfYVH0yBE1iIFes0qM",
        "expires_in": 7200,
        "authorizer_refresh_token": "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY",
        "func_info": [
            {"funcscope_category": {"id": 1}},
            {"funcscope_category": {"id": 2}},
            {"funcscope_category": {"id": 3}, "confirm_info": {"need_confirm": 0, "already_confirm": 0}},
        ],
    }
}

# api_get_authorizer_info in the legacy form: "appid" instead of "authorizer_appid", no access token.
AUTHORIZER_INFO = {
    "authorizer_info": {
        "nick_name": "微信SDK Demo Special",
        "head_img": "http://wx.qlogo.cn/mmopen/x/0",
        "service_type_info": {"id": 2},
        "verify_type_info": {"id": 0},
        "user_name": "gh_eb5e3a772040",
        "principal_name": "腾讯计算机系统有限公司",
        "alias": "paytest01",
        "business_info": {"open_store": 0, "open_scan": 0, "open_pay": 0, "open_card": 0, "open_shake": 0},
        "account_status": 1,
        "qrcode_url": "URL",
        "something_new": {"ignored": True},
    },
    "authorization_info": {
        "appid": "wxf8b4f85f3a794e77",
        "func_info": [{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": "6"}}],
    },
}


def test_query_auth_answer_parses_tokens_and_granted_sets():
    info = parse_authorization_info(QUERY_AUTH)
    assert info == AuthorizationInfo(
        authorizer_appid="wxf8b4f85f3a794e77",
        access_token="QXjUqNqfYVH0yBE1iIFes0qM",
        expires_in=7200,
        refresh_token="dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY",
        func_ids=frozenset({1, 2, 3}),
    )


def test_tokens_stay_out_of_the_repr():
    text = repr(parse_authorization_info(QUERY_AUTH))
    assert "QXjUqNqfYVH0yBE1iIFes0qM" not in text
    assert "dTo-YCXPL4llX" not in text
    assert "wxf8b4f85f3a794e77" in text


def test_legacy_appid_key_is_accepted_and_absent_tokens_are_none():
    info = parse_authorization_info(AUTHORIZER_INFO)
    assert info.authorizer_appid == "wxf8b4f85f3a794e77"
    assert info.access_token is None and info.refresh_token is None and info.expires_in is None
    assert info.func_ids == frozenset({1, 6})


def test_inner_authorization_info_object_is_accepted_too():
    assert parse_authorization_info(QUERY_AUTH["authorization_info"]).authorizer_appid == "wxf8b4f85f3a794e77"


def test_malformed_func_info_items_are_skipped():
    data = {
        "authorization_info": {
            "authorizer_appid": "wx1",
            "func_info": [{"funcscope_category": {"id": 19}}, {}, None, {"funcscope_category": {"id": "x"}}, 7],
        }
    }
    assert parse_authorization_info(data).func_ids == frozenset({19})


def test_missing_func_info_means_no_sets_granted():
    assert parse_authorization_info({"authorization_info": {"authorizer_appid": "wx1"}}).func_ids == frozenset()


@pytest.mark.parametrize(
    "data", [{}, {"authorization_info": {}}, {"authorization_info": []}, {"authorization_info": None}]
)
def test_authorization_info_without_an_appid_is_malformed(data):
    with pytest.raises(MalformedResponse) as exc:
        parse_authorization_info(data)
    assert isinstance(exc.value, Transient)


def test_authorizer_info_reads_type_certification_and_status():
    assert parse_authorizer_info(AUTHORIZER_INFO) == AuthorizerInfo(
        nick_name="微信SDK Demo Special",
        service_type_id=2,
        verify_type_id=0,
        account_status=1,
        is_mini_program=False,
        user_name="gh_eb5e3a772040",
        alias="paytest01",
        principal_name="腾讯计算机系统有限公司",
    )


def test_uncertified_account_reads_verify_type_minus_one():
    data = {"authorizer_info": {"nick_name": "n", "service_type_info": {"id": "0"}, "verify_type_info": {"id": -1}}}
    info = parse_authorizer_info(data)
    assert (info.service_type_id, info.verify_type_id) == (0, -1)


def test_mini_program_is_recognised_by_its_miniprograminfo_key():
    data = {"authorizer_info": {"nick_name": "mp", "MiniProgramInfo": {}, "service_type_info": {"id": 0}}}
    assert parse_authorizer_info(data).is_mini_program is True


def test_missing_optional_fields_read_as_empty():
    info = parse_authorizer_info({"authorizer_info": {"nick_name": "n"}})
    assert info == AuthorizerInfo("n", None, None, None, False, "", "", "")


@pytest.mark.parametrize("data", [{}, {"authorizer_info": None}, {"errcode": 0, "errmsg": "ok"}])
def test_answer_without_authorizer_info_is_malformed(data):
    with pytest.raises(MalformedResponse):
        parse_authorizer_info(data)


# --- openapi/quota/get (docs/wechat.md §12) ----------------------------------------------------

from wechat.results import ApiQuota, RateLimit, parse_api_quota, parse_authorizer_list  # noqa: E402


def test_quota_get_answer_is_read_with_both_rate_limits():
    quota = parse_api_quota(
        {
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 500000, "used": 12, "remain": 499988},
            "rate_limit": {"call_count": 600, "refresh_second": 60},
            "component_rate_limit": {"call_count": 120, "refresh_second": 60},
        }
    )
    assert quota == ApiQuota(
        daily_limit=500000,
        used=12,
        remain=499988,
        rate_limit=RateLimit(600, 60),
        component_rate_limit=RateLimit(120, 60),
    )
    assert quota.pace() == 2.0  # the tighter one: a platform calls on the merchant's behalf


def test_quota_get_without_rate_limits_gives_no_pace_and_strings_are_read_as_numbers():
    quota = parse_api_quota({"quota": {"daily_limit": "100", "used": "1", "remain": "99"}})
    assert (quota.daily_limit, quota.remain, quota.pace()) == (100, 99, None)
    nonsense = parse_api_quota({"quota": {}, "rate_limit": {"call_count": 0, "refresh_second": 60}})
    assert nonsense.rate_limit is None


def test_quota_get_answer_without_any_block_is_malformed():
    with pytest.raises(MalformedResponse):
        parse_api_quota({"errcode": 0})


def test_authorizer_list_reads_refresh_tokens_and_tolerates_missing_ones():
    total, items = parse_authorizer_list(
        {
            "total_count": 2,
            "list": [
                {"authorizer_appid": "wx1", "refresh_token": "rt1", "auth_time": 1558000607},
                {"authorizer_appid": "wx2", "auth_time": "1558000608"},
                {"refresh_token": "orphan"},
            ],
        }
    )
    assert total == 2
    assert [(i.authorizer_appid, i.refresh_token, i.auth_time) for i in items] == [
        ("wx1", "rt1", 1558000607),
        ("wx2", None, 1558000608),
    ]
    with pytest.raises(MalformedResponse):
        parse_authorizer_list({"list": []})
