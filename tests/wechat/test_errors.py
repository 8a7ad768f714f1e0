import json
import pickle

import pytest

from wechat import errors
from wechat.errors import (
    AccountRestricted,
    ApiBanned,
    AuthorizationCodeInvalid,
    AuthorizationRevoked,
    ComponentInvalid,
    ComponentTicketInvalid,
    InvalidKfAccount,
    IpNotWhitelisted,
    KfNotEnabled,
    MalformedResponse,
    MerchantBlocked,
    MerchantIpNotWhitelisted,
    MinuteQuotaExceeded,
    NoVerifyTicket,
    Permanent,
    PermissionNotGranted,
    PlatformBlocked,
    PlatformQuotaExceeded,
    QuotaExceeded,
    RefreshTokenInvalid,
    TokenInvalid,
    Transient,
    WeChatError,
    WrongTokenKind,
    error_for,
)


@pytest.mark.parametrize(
    ("errcode", "cls"),
    [
        (40001, TokenInvalid),
        (40014, TokenInvalid),
        (42001, TokenInvalid),
        (41001, TokenInvalid),
        (-1, Transient),
        (45011, MinuteQuotaExceeded),
        (45009, QuotaExceeded),
        (48001, PermissionNotGranted),
        (61007, PermissionNotGranted),
        (61003, AuthorizationRevoked),
        (61023, RefreshTokenInvalid),
        (65400, KfNotEnabled),
        (65401, InvalidKfAccount),
        (61005, ComponentTicketInvalid),
        (61006, ComponentTicketInvalid),
        (61004, IpNotWhitelisted),
        (61011, ComponentInvalid),
        (40125, ComponentInvalid),
        (41004, ComponentInvalid),
        (61014, WrongTokenKind),
        (61015, WrongTokenKind),
        (61024, WrongTokenKind),
        (40164, MerchantIpNotWhitelisted),
        (40090, MerchantIpNotWhitelisted),
        (48004, ApiBanned),
        (50002, AccountRestricted),
        (61009, AuthorizationCodeInvalid),
        (61010, AuthorizationCodeInvalid),
        (40013, Permanent),
        (65406, Permanent),
        (12345678, Permanent),
    ],
)
def test_each_errcode_maps_to_the_action_its_caller_must_take(errcode, cls):
    err = error_for(errcode, "msg")
    assert type(err) is cls
    assert err.errcode == errcode
    assert err.errmsg == "msg"


def test_kf_and_code_errors_are_permanent():
    for cls in (KfNotEnabled, InvalidKfAccount, AuthorizationCodeInvalid):
        assert issubclass(cls, Permanent)


def test_a_missing_verify_ticket_holds_the_platform_and_never_reached_wechat():
    err = NoVerifyTicket(errmsg="no component_verify_ticket received yet")
    assert isinstance(err, PlatformBlocked)
    assert isinstance(err, Transient)  # a task that knows only "retry later" still waits for the ticket
    assert (err.errcode, err.outcome_unknown, str(err)) == (None, False, "no component_verify_ticket received yet")
    assert err.alert_code == "verify_ticket_missing"
    rebuilt = pickle.loads(pickle.dumps(err))
    assert (type(rebuilt), rebuilt.errmsg) == (NoVerifyTicket, err.errmsg)


@pytest.mark.parametrize(
    ("errcode", "alert_code"),
    [
        (61004, "ip_not_whitelisted"),
        (61005, "component_ticket_invalid"),
        (61006, "component_ticket_invalid"),
        (61011, "component_invalid"),
        (40125, "component_invalid"),
        (41004, "component_invalid"),
        (61014, "wrong_token_kind"),
        (61015, "wrong_token_kind"),
        (61024, "wrong_token_kind"),
    ],
)
def test_platform_level_errcodes_hold_behind_one_alert_per_cause(errcode, alert_code):
    err = error_for(errcode, "msg")
    assert isinstance(err, PlatformBlocked)
    assert not isinstance(err, Permanent)
    assert err.alert_code == alert_code


def test_45009_is_the_merchants_quota_on_its_calls_and_the_platforms_on_component_calls():
    merchant = error_for(45009, "reach max api daily quota limit", path="/customservice/kfaccount/del")
    platform = error_for(45009, "reach max api daily quota limit", path="/cgi-bin/component/api_authorizer_token")
    assert type(merchant) is QuotaExceeded
    assert type(platform) is PlatformQuotaExceeded
    assert platform.alert_code == "platform_quota_exceeded"


def test_45011_is_a_minute_deferral_not_a_daily_pause():
    err = error_for(45011, "api minute-quota reach limit  mustslower  retry next minute")
    assert isinstance(err, MinuteQuotaExceeded)
    assert not isinstance(err, QuotaExceeded)
    assert err.reason == "minute_quota_exceeded"


def test_61023_is_not_a_revocation():
    err = error_for(61023, "refresh_token is invalid")
    assert not isinstance(err, AuthorizationRevoked)
    assert err.reason == "refresh_token_invalid"


def test_per_merchant_blockers_say_whether_they_hold_or_fail():
    assert all(isinstance(error_for(c, ""), MerchantBlocked) for c in (40164, 40090, 48004, 50002))
    assert MerchantIpNotWhitelisted.hold  # the merchant (or we) can fix a whitelist: wait for it
    assert not ApiBanned.hold and not AccountRestricted.hold  # WeChat's sanctions: fail, say why
    assert (error_for(48004, "").reason, error_for(50002, "").reason) == ("api_banned", "account_restricted")


def test_reasons_match_the_deletion_request_vocabulary():
    assert error_for(65401, "").reason == "invalid_kf_account"
    assert error_for(65400, "").reason == "kf_not_enabled"
    assert error_for(48001, "").reason == "permission_denied"
    assert error_for(61003, "").reason == "authorization_revoked"
    assert error_for(-1, "").reason == "upstream_unavailable"
    assert MalformedResponse(None, "x").reason == "upstream_unavailable"


def test_errcode_sets_do_not_overlap():
    groups = [
        errors.TOKEN_ERRCODES,
        errors.TRANSIENT_ERRCODES,
        errors.MINUTE_QUOTA_ERRCODES,
        errors.QUOTA_ERRCODES,
        errors.REFRESH_TOKEN_ERRCODES,
        errors.COMPONENT_INVALID_ERRCODES,
        errors.WRONG_TOKEN_KIND_ERRCODES,
        errors.MERCHANT_IP_WHITELIST_ERRCODES,
        errors.API_BANNED_ERRCODES,
        errors.ACCOUNT_RESTRICTED_ERRCODES,
        errors.PERMISSION_ERRCODES,
        errors.REVOKED_ERRCODES,
        errors.KF_NOT_ENABLED_ERRCODES,
        errors.INVALID_KF_ACCOUNT_ERRCODES,
        errors.COMPONENT_TICKET_ERRCODES,
        errors.IP_WHITELIST_ERRCODES,
        errors.AUTHORIZATION_CODE_ERRCODES,
    ]
    seen: set[int] = set()
    for group in groups:
        assert isinstance(group, frozenset)
        assert not (seen & group)
        seen |= group


def test_system_busy_leaves_the_outcome_unknown_but_definitive_answers_do_not():
    assert error_for(-1, "system error").outcome_unknown is True
    assert error_for(45011, "minute quota").outcome_unknown is False
    assert error_for(65401, "invalid").outcome_unknown is False


def test_rid_is_parsed_from_errmsg():
    err = error_for(40001, "invalid credential, access_token is invalid or not latest rid: 6643a1f2-1a2b3c4d-5e6f7a8b")
    assert err.rid == "6643a1f2-1a2b3c4d-5e6f7a8b"
    assert error_for(40001, "invalid credential").rid is None
    assert error_for(-1, "system error hint: [abc] rid:65f0-1").rid == "65f0-1"


def test_errcode_zero_is_not_an_error():
    with pytest.raises(ValueError):
        error_for(0, "ok")


def test_str_names_path_status_and_errcode():
    assert str(error_for(65401, "invalid custom service account", path="/customservice/kfaccount/del")) == (
        "/customservice/kfaccount/del: errcode 65401: invalid custom service account"
    )
    assert str(Transient(None, "", http_status=502)) == "http 502"
    assert str(Transient()) == "Transient"


def test_errors_survive_pickling_with_their_attributes():
    err = error_for(-1, "system error rid: ab-12", path="/p")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is Transient
    assert (clone.errcode, clone.errmsg, clone.rid, clone.outcome_unknown, clone.path) == (
        -1,
        "system error rid: ab-12",
        "ab-12",
        True,
        "/p",
    )


def test_errors_rebuild_from_their_args_like_celerys_json_serializer_does():
    err = InvalidKfAccount(65401, "invalid custom service account")
    rebuilt = InvalidKfAccount(*json.loads(json.dumps(err.args)))
    assert (rebuilt.errcode, rebuilt.errmsg) == (65401, "invalid custom service account")


def test_all_are_wechat_errors():
    for cls in (TokenInvalid, Transient, QuotaExceeded, PermissionNotGranted, AuthorizationRevoked, Permanent):
        assert issubclass(cls, WeChatError)
