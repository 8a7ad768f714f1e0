"""Typed views of WeChat's JSON answers, parsed leniently.

SDKs and docs disagree on field types (kf_id: "1001" or 1001) and names ("authorizer_appid" or the
legacy "appid"), so parsers accept every form seen in docs/wechat.md §5 and §9 and ignore unknown fields.
A missing field that identifies the object is a malformed answer (`MalformedResponse`, transient).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wechat.errors import MalformedResponse

__all__ = [
    "ApiQuota",
    "AuthorizationInfo",
    "AuthorizerInfo",
    "AuthorizerListItem",
    "KfAccountInfo",
    "RateLimit",
    "parse_api_quota",
    "parse_authorization_info",
    "parse_authorizer_info",
    "parse_authorizer_list",
    "parse_kf_list",
]


@dataclass(frozen=True, slots=True)
class KfAccountInfo:
    kf_account: str
    kf_nick: str = ""
    kf_id: str = ""
    kf_headimgurl: str = ""
    kf_wx: str = ""  # the bound staff WeChat ID; "" while unbound
    invite_wx: str = ""
    invite_expire_time: int | None = None  # unix seconds
    invite_status: str = ""  # "waiting" / "rejected" / "expired" / ""


@dataclass(frozen=True, slots=True)
class AuthorizationInfo:
    authorizer_appid: str
    # Tokens are only returned when the account has API rights (docs/wechat.md §5); repr=False keeps them out of logs.
    access_token: str | None = field(default=None, repr=False)
    expires_in: int | None = None
    refresh_token: str | None = field(default=None, repr=False)
    func_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class AuthorizerInfo:
    nick_name: str
    service_type_id: int | None  # OA: 0 subscription, 1 upgraded subscription, 2 service account
    verify_type_id: int | None  # -1 not certified, 0 WeChat-certified, others special (docs/wechat.md §5)
    account_status: int | None  # 1 normal, 14 closed, 16 banned, 18 warned, 19 frozen
    is_mini_program: bool
    user_name: str  # original id, gh_…
    alias: str  # the account's WeChat ID, the kf_account suffix; may be ""
    principal_name: str


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``call_count`` calls per ``refresh_second`` seconds."""

    call_count: int
    refresh_second: int

    @property
    def per_second(self) -> float:
        return self.call_count / self.refresh_second


@dataclass(frozen=True, slots=True)
class ApiQuota:
    """openapi/quota/get for one API (docs/wechat.md §12): any part WeChat leaves out is None."""

    daily_limit: int | None
    used: int | None
    remain: int | None
    rate_limit: RateLimit | None  # the account's own per-period limit
    component_rate_limit: RateLimit | None  # the limit on calls a platform makes on the account's behalf

    def pace(self) -> float | None:
        """Calls per second a platform may make for this account: the tighter of the two limits."""
        rates = [r.per_second for r in (self.rate_limit, self.component_rate_limit) if r is not None]
        return min(rates) if rates else None


@dataclass(frozen=True, slots=True)
class AuthorizerListItem:
    authorizer_appid: str
    refresh_token: str | None = field(default=None, repr=False)  # missing if the code was never exchanged
    auth_time: int | None = None


def coerce_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    return None


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _type_id(info: Mapping[str, Any], key: str) -> int | None:
    nested = info.get(key)
    return coerce_int(nested.get("id")) if isinstance(nested, Mapping) else None


def parse_kf_list(data: Mapping[str, Any]) -> list[KfAccountInfo]:
    items = data.get("kf_list")
    if not isinstance(items, list):
        # An absent list is not "no accounts": treating it so would let a bad answer empty the mirror.
        raise MalformedResponse(None, "getkflist answer has no kf_list", outcome_unknown=True)
    accounts = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kf_account = _as_str(item.get("kf_account"))
        if not kf_account:
            continue  # nothing to identify it by; the next sync will see it if it is real
        accounts.append(
            KfAccountInfo(
                kf_account=kf_account,
                kf_nick=_as_str(item.get("kf_nick")),
                kf_id=_as_str(item.get("kf_id")),
                kf_headimgurl=_as_str(item.get("kf_headimgurl")),
                kf_wx=_as_str(item.get("kf_wx")),
                invite_wx=_as_str(item.get("invite_wx")),
                invite_expire_time=coerce_int(item.get("invite_expire_time")),
                invite_status=_as_str(item.get("invite_status")),
            )
        )
    return accounts


def _func_ids(func_info: Any) -> frozenset[int]:
    ids: set[int] = set()
    if isinstance(func_info, list):
        for item in func_info:
            category = item.get("funcscope_category") if isinstance(item, Mapping) else None
            if isinstance(category, Mapping) and (func_id := coerce_int(category.get("id"))) is not None:
                ids.add(func_id)
    return frozenset(ids)


def parse_authorization_info(data: Mapping[str, Any]) -> AuthorizationInfo:
    """Accepts the whole api_query_auth / api_get_authorizer_info answer, or its authorization_info."""
    info = data.get("authorization_info", data)
    if not isinstance(info, Mapping):
        raise MalformedResponse(None, "authorization_info is not an object", outcome_unknown=True)
    appid = _as_str(info.get("authorizer_appid")) or _as_str(info.get("appid"))
    if not appid:
        raise MalformedResponse(None, "authorization_info has no authorizer_appid", outcome_unknown=True)
    return AuthorizationInfo(
        authorizer_appid=appid,
        access_token=_as_str(info.get("authorizer_access_token")) or None,
        expires_in=coerce_int(info.get("expires_in")),
        refresh_token=_as_str(info.get("authorizer_refresh_token")) or None,
        func_ids=_func_ids(info.get("func_info")),
    )


def parse_authorizer_info(data: Mapping[str, Any]) -> AuthorizerInfo:
    """Accepts the whole api_get_authorizer_info answer, or its authorizer_info."""
    info = data.get("authorizer_info", data)
    if not isinstance(info, Mapping):
        raise MalformedResponse(None, "authorizer_info is not an object", outcome_unknown=True)
    if "authorizer_info" not in data and "nick_name" not in info and "user_name" not in info:
        raise MalformedResponse(None, "answer has no authorizer_info", outcome_unknown=True)
    return AuthorizerInfo(
        nick_name=_as_str(info.get("nick_name")),
        service_type_id=_type_id(info, "service_type_info"),
        verify_type_id=_type_id(info, "verify_type_info"),
        account_status=coerce_int(info.get("account_status")),
        # Only Mini Programs carry this key (docs/wechat.md §5); an empty object still marks one, null does not.
        is_mini_program=info.get("MiniProgramInfo") is not None,
        user_name=_as_str(info.get("user_name")),
        alias=_as_str(info.get("alias")),
        principal_name=_as_str(info.get("principal_name")),
    )


def _rate_limit(value: Any) -> RateLimit | None:
    if not isinstance(value, Mapping):
        return None
    count, period = coerce_int(value.get("call_count")), coerce_int(value.get("refresh_second"))
    if count is None or period is None or count <= 0 or period <= 0:
        return None  # absent, zero or nonsense: no limit we could honour
    return RateLimit(call_count=count, refresh_second=period)


def parse_api_quota(data: Mapping[str, Any]) -> ApiQuota:
    """The openapi/quota/get answer. Each block is optional; an answer with none of them is malformed."""
    quota = data.get("quota")
    if not isinstance(quota, Mapping) and "rate_limit" not in data and "component_rate_limit" not in data:
        raise MalformedResponse(None, "quota/get answer has no quota", outcome_unknown=True)
    quota = quota if isinstance(quota, Mapping) else {}
    return ApiQuota(
        daily_limit=coerce_int(quota.get("daily_limit")),
        used=coerce_int(quota.get("used")),
        remain=coerce_int(quota.get("remain")),
        rate_limit=_rate_limit(data.get("rate_limit")),
        component_rate_limit=_rate_limit(data.get("component_rate_limit")),
    )


def parse_authorizer_list(data: Mapping[str, Any]) -> tuple[int, list[AuthorizerListItem]]:
    """api_get_authorizer_list: (total_count, items). A missing list is malformed, not "nobody"."""
    items = data.get("list")
    total = coerce_int(data.get("total_count"))
    if not isinstance(items, list) or total is None:
        raise MalformedResponse(None, "authorizer list answer has no list or total_count", outcome_unknown=True)
    parsed = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        appid = _as_str(item.get("authorizer_appid"))
        if appid:
            parsed.append(
                AuthorizerListItem(
                    authorizer_appid=appid,
                    refresh_token=_as_str(item.get("refresh_token")) or None,
                    auth_time=coerce_int(item.get("auth_time")),
                )
            )
    return total, parsed
