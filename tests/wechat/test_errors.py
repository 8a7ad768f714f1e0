import json
import pickle

import pytest

from wechat import errors
from wechat.errors import (
    AuthorizationCodeInvalid,
    AuthorizationRevoked,
    ComponentTicketInvalid,
    InvalidKfAccount,
    IpNotWhitelisted,
    KfNotEnabled,
    MalformedResponse,
    NoVerifyTicket,
    Permanent,
    PermissionDenied,
    QuotaExceeded,
    TokenInvalid,
    Transient,
    WeChatError,
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
        (45011, Transient),
        (45009, QuotaExceeded),
        (48001, PermissionDenied),
        (61007, PermissionDenied),
        (61003, AuthorizationRevoked),
        (61023, AuthorizationRevoked),
        (65400, KfNotEnabled),
        (65401, InvalidKfAccount),
        (61005, ComponentTicketInvalid),
        (61006, ComponentTicketInvalid),
        (61004, IpNotWhitelisted),
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


def test_a_missing_verify_ticket_is_transient_and_never_reached_wechat():
    err = NoVerifyTicket(errmsg="no component_verify_ticket received yet")
    assert isinstance(err, Transient)
    assert (err.errcode, err.outcome_unknown, str(err)) == (None, False, "no component_verify_ticket received yet")
    rebuilt = pickle.loads(pickle.dumps(err))
    assert (type(rebuilt), rebuilt.errmsg) == (NoVerifyTicket, err.errmsg)


def test_an_expired_or_invalid_verify_ticket_is_transient_not_final():
    for errcode in (61005, 61006):
        assert isinstance(error_for(errcode, "component ticket is expired"), Transient)


def test_an_unlisted_caller_ip_is_neither_retried_nor_final_for_one_item():
    err = error_for(61004, "access clientip is not registered requestIP: 203.0.113.7")
    assert not isinstance(err, (Transient, Permanent))
    assert err.reason == "ip_not_whitelisted"


def test_reasons_match_the_deletion_request_vocabulary():
    assert error_for(65401, "").reason == "invalid_kf_account"
    assert error_for(65400, "").reason == "kf_not_enabled"
    assert error_for(48001, "").reason == "permission_denied"
    assert error_for(61023, "").reason == "authorization_revoked"
    assert error_for(-1, "").reason == "upstream_unavailable"
    assert MalformedResponse(None, "x").reason == "upstream_unavailable"


def test_errcode_sets_do_not_overlap():
    groups = [
        errors.TOKEN_ERRCODES,
        errors.TRANSIENT_ERRCODES,
        errors.QUOTA_ERRCODES,
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
    for cls in (TokenInvalid, Transient, QuotaExceeded, PermissionDenied, AuthorizationRevoked, Permanent):
        assert issubclass(cls, WeChatError)
