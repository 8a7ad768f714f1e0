"""The sandbox's memory of WeChat: accounts, authorizations, tokens, codes, tickets and quotas.

Every public method takes the one lock, does O(1) work (dict lookups, no scans over history) and
raises `WeChatError` with the errcode WeChat documents. The clock is injectable so tests can move
time forward instead of sleeping through token lifetimes.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errcodes import WeChatError

KINDS = ("subscription", "service", "mini_program")
# The permission sets the kf APIs list (docs/wechat.md §9, §10).
KF_PERMISSION_SETS = frozenset({1, 6, 19, 100, 101})
# The permission sets WeChat's page offers each account kind: the Official Account and Mini Program
# tables are disjoint (docs/wechat.md §10). 100 and 101 are in neither.
PERMISSION_SETS_BY_GROUP: dict[str, dict[int, str]] = {
    "official_account": {
        1: "消息管理 · message management",
        2: "用户管理 · user management",
        3: "帐号服务 · account services",
        4: "网页服务 · web services",
        6: "微信多客服 · multi-customer-service",
        7: "群发与通知 · broadcasts and notifications",
        11: "素材管理 · material management",
        15: "自定义菜单 · custom menu",
    },
    "mini_program": {
        17: "帐号管理 · account management",
        18: "开发管理与数据分析 · development and analytics",
        19: "小程序客服管理 · Mini Program customer service",
        25: "开放平台帐号管理 · Open Platform account management",
    },
}
QUOTA_APIS = ("add", "del", "getkflist")
DEFAULT_DAILY_LIMIT = 100_000
MAX_KF_ACCOUNTS = 100
TOKEN_OVERLAP = 300  # a replaced token (access or refresh) keeps working this long (docs/wechat.md §6)
DEFAULT_MINUTE_LIMIT = 20_000  # calls per API per wall-clock minute: far above what any test sends
TICKET_VALIDITY = 12 * 3600
PRE_AUTH_CODE_TTL = 600
AUTH_CODE_TTL = 600
CLEAR_QUOTA_PER_MONTH = 10
_BEIJING_OFFSET = 8 * 3600  # WeChat's daily quotas reset at midnight Beijing time
_MAX_TICKETS = 500
_MAX_CODES = 20_000

APPID_RE = re.compile(r"wx[0-9a-f]{16}")
_KF_ACCOUNT_RE = re.compile(r"([A-Za-z0-9_]{1,10})@(.{1,30})")
_MAX_NICKNAME = 16


@dataclass
class Behaviour:
    """How strictly the sandbox imitates WeChat where a demo or a test may want it otherwise.

    Every default is what WeChat does (docs/wechat.md); each is a command-line flag and can be
    changed at run time (``POST /sandbox/behaviour``).
    """

    # api_authorizer_token answers a new refresh token; the one presented keeps working 300 s.
    rotate_refresh_tokens: bool = True
    # What happens to a redirect_uri's query parameters after the first: "escape" (joined with
    # "&amp;"), "drop", or "keep" (left intact, unlike WeChat).
    redirect_query: str = "escape"
    # redirect_uri must be on the registered authorization domain.
    check_redirect_domain: bool = True
    # The per-minute limit (45011) of each kf API on a merchant's behalf, unless set per account.
    minute_limit: int = DEFAULT_MINUTE_LIMIT

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key in ("rotate_refresh_tokens", "check_redirect_domain") and isinstance(value, bool):
                setattr(self, key, value)
            elif key == "redirect_query" and value in REDIRECT_QUERY_MODES:
                self.redirect_query = value
            elif key == "minute_limit" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self.minute_limit = value
            else:
                raise ValueError(f"cannot set {key!r} to {value!r}")

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


REDIRECT_QUERY_MODES = ("escape", "drop", "keep")


@dataclass
class KfAccount:
    kf_account: str
    kf_nick: str
    kf_id: str
    kf_headimgurl: str = ""
    kf_wx: str | None = None
    invite_wx: str | None = None
    invite_expire_time: int | None = None
    invite_status: str | None = None

    def as_wechat(self, now: float) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kf_account": self.kf_account,
            "kf_headimgurl": self.kf_headimgurl,
            "kf_id": self.kf_id,
            "kf_nick": self.kf_nick,
        }
        if self.kf_wx:
            item["kf_wx"] = self.kf_wx
        elif self.invite_wx:
            status = self.invite_status or "waiting"
            if status == "waiting" and self.invite_expire_time is not None and self.invite_expire_time <= now:
                status = "expired"
            item["invite_wx"] = self.invite_wx
            item["invite_expire_time"] = int(self.invite_expire_time or 0)
            item["invite_status"] = status
        return item


@dataclass
class Account:
    appid: str
    nick_name: str
    kind: str
    verify_type: int
    service_type: int
    kf_enabled: bool
    alias: str
    user_name: str
    principal_name: str
    head_img: str = ""
    account_status: int = 1
    kf: dict[str, KfAccount] = field(default_factory=dict)
    next_kf_id: int = 1001
    daily_limits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUOTA_APIS, DEFAULT_DAILY_LIMIT))
    used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUOTA_APIS, 0))
    quota_day: int = 0
    clear_quota_month: int = 0
    clear_quota_count: int = 0
    # The per-minute limit (45011): None follows Behaviour.minute_limit; counted per wall-clock minute.
    minute_limits: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(QUOTA_APIS, None))
    minute_used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUOTA_APIS, 0))
    minute: int = 0
    # Authorization to the (single) component this sandbox simulates.
    authorized: bool = False
    func: tuple[int, ...] = ()
    refresh_token: str | None = None
    # After a rotation the replaced refresh token keeps working until this time (docs/wechat.md §6).
    previous_refresh_token: str | None = None
    previous_refresh_token_until: float = 0.0
    refresh_token_delivered: bool = False
    auth_time: int | None = None
    generation: int = 0  # +1 on every authorization: older auth codes die
    epoch: int = 0  # +1 on every revocation: every token issued before dies
    tokens: list[str] = field(default_factory=list)  # [previous, current]

    @property
    def certified(self) -> bool:
        # WeChat certification only: 0, or 3/4/5 (qualification verified); 1 and 2 are Weibo-only.
        return self.verify_type in (0, 3, 4, 5)

    @property
    def is_official_account(self) -> bool:
        return self.kind in ("subscription", "service")

    @property
    def permission_group(self) -> str:
        return "official_account" if self.is_official_account else "mini_program"

    def minute_limit(self, api: str, behaviour: Behaviour) -> int:
        own = self.minute_limits.get(api)
        return behaviour.minute_limit if own is None else own

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "appid": self.appid,
            "nick_name": self.nick_name,
            "kind": self.kind,
            "certified": self.certified,
            "verify_type": self.verify_type,
            "service_type": self.service_type,
            "kf_enabled": self.kf_enabled,
            "alias": self.alias,
            "user_name": self.user_name,
            "principal_name": self.principal_name,
            "authorized": self.authorized,
            "func": list(self.func),
            "auth_time": self.auth_time,
            "kf_count": len(self.kf),
            "quota": {
                api: {
                    "daily_limit": self.daily_limits[api],
                    "used": self.used[api],
                    "minute_limit": self.minute_limits[api],
                    "minute_used": self.minute_used[api] if self.minute == int(now // 60) else 0,
                }
                for api in QUOTA_APIS
            },
        }


@dataclass
class Token:
    value: str
    appid: str | None  # None: a component token
    epoch: int
    expires_at: float
    dead_after: float | None = None  # set when a newer token replaced this one


@dataclass
class PreAuthCode:
    expires_at: float
    used: bool = False


@dataclass
class AuthCode:
    appid: str
    expires_at: float
    generation: int
    token: str | None = None


@dataclass
class Authorization:
    """What one confirmation produced: the redirect's code and the event to push (None: no event)."""

    appid: str
    auth_code: str
    expires_in: int
    expires_at: int
    pre_auth_code: str
    info_type: str | None
    create_time: int


def _new_secret(prefix: str = "", nbytes: int = 48) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


class State:
    def __init__(
        self,
        *,
        component_appid: str,
        component_appsecret: str,
        token_ttl: int = 7200,
        clock: Callable[[], float] = time.time,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.component_appid = component_appid
        self.component_appsecret = component_appsecret
        self.token_ttl = token_ttl
        self.clock = clock
        self.public_base = ""  # the sandbox's own URL, for avatar links; set once the port is known
        self.behaviour = behaviour or Behaviour()
        self.lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Token] = {}
        self.component_tokens: list[str] = []
        self.tickets: dict[str, float] = {}
        self.pre_auth_codes: dict[str, PreAuthCode] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        # The authorized accounts in api_get_authorizer_list's order, kept between pages (a list of
        # 100,000 is read in 200 of them); None when an authorization changed since.
        self._listing: list[Account] | None = None

    # ---------------------------------------------------------------- tickets and component token

    def issue_ticket(self) -> str:
        ticket = _new_secret("ticket@@@", 40)
        with self.lock:
            self.tickets[ticket] = self.clock()
            if len(self.tickets) > _MAX_TICKETS:
                del self.tickets[next(iter(self.tickets))]
        return ticket

    def check_component_credentials(self, appid: object, secret: object) -> None:
        if not appid:
            raise WeChatError(41002)
        if appid != self.component_appid:
            raise WeChatError(61011)
        if not secret:
            raise WeChatError(41004)
        if not secrets.compare_digest(str(secret).encode(), self.component_appsecret.encode()):
            raise WeChatError(40125)

    def component_token(self, *, appid: object, secret: object, ticket: object) -> dict[str, Any]:
        self.check_component_credentials(appid, secret)
        with self.lock:
            now = self.clock()
            issued = self.tickets.get(ticket) if isinstance(ticket, str) else None
            if issued is None:
                raise WeChatError(61006)
            if now - issued > TICKET_VALIDITY:
                raise WeChatError(61005)
            token = self._mint(self.component_tokens, appid=None, epoch=0, now=now)
        return {"component_access_token": token.value, "expires_in": self.token_ttl}

    def check_component_token(self, value: str | None) -> None:
        if not value:
            raise WeChatError(41001)
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.appid is not None:
                raise WeChatError(40001)
            self._check_alive(token, self.clock())

    def check_component_appid(self, appid: object) -> None:
        if not appid:
            raise WeChatError(41002)
        if appid != self.component_appid:
            raise WeChatError(61011)

    # ---------------------------------------------------------------- tokens

    def _mint(self, history: list[str], *, appid: str | None, epoch: int, now: float) -> Token:
        token = Token(_new_secret(nbytes=72), appid, epoch, now + self.token_ttl)
        if history:
            previous = self.tokens.get(history[-1])
            if previous is not None:
                cutoff = now + TOKEN_OVERLAP
                previous.dead_after = cutoff if previous.dead_after is None else min(previous.dead_after, cutoff)
        history.append(token.value)
        self.tokens[token.value] = token
        # Only the current and the previous token can still be alive; forgetting older ones keeps
        # memory flat, and an unknown token gets the same 40001 a replaced one would.
        while len(history) > 2:
            self.tokens.pop(history.pop(0), None)
        return token

    @staticmethod
    def _check_alive(token: Token, now: float) -> None:
        if token.dead_after is not None and now >= token.dead_after:
            raise WeChatError(40001)
        if now >= token.expires_at:
            raise WeChatError(42001)

    def appid_for_token(self, value: str | None) -> str | None:
        if not value:
            return None
        token = self.tokens.get(value)  # a dict read: atomic under the GIL, no lock needed
        return token.appid if token is not None else None

    # ---------------------------------------------------------------- authorization

    def create_pre_auth_code(self) -> dict[str, Any]:
        code = _new_secret("preauthcode@@@", 36)
        with self.lock:
            now = self.clock()
            self._trim(self.pre_auth_codes, now)
            self.pre_auth_codes[code] = PreAuthCode(now + PRE_AUTH_CODE_TTL)
        return {"pre_auth_code": code, "expires_in": PRE_AUTH_CODE_TTL}

    def pre_auth_code_problem(self, code: str | None) -> str | None:
        """Why the authorization page must refuse this code, or None when it is usable."""
        with self.lock:
            record = self.pre_auth_codes.get(code or "")
            if record is None:
                return "invalid"
            if record.used:
                return "used"
            if self.clock() >= record.expires_at:
                return "expired"
        return None

    def _trim(self, codes: dict[str, Any], now: float) -> None:
        if len(codes) < _MAX_CODES:
            return
        for key in [k for k, v in codes.items() if v.expires_at <= now]:
            del codes[key]
        while len(codes) >= _MAX_CODES:
            del codes[next(iter(codes))]

    def authorize(self, *, appid: str, func: Iterable[int], pre_auth_code: str | None) -> Authorization:
        """What the user's confirmation on the authorization page does."""
        granted = tuple(sorted({int(f) for f in func}))
        if not granted:
            raise ValueError("grant at least one permission set")
        with self.lock:
            now = self.clock()
            account = self.accounts.get(appid)
            if account is None:
                raise KeyError(appid)
            if pre_auth_code is not None:
                record = self.pre_auth_codes.get(pre_auth_code)
                if record is None or record.used or now >= record.expires_at:
                    raise ValueError("pre_auth_code is invalid, used or expired")
                record.used = True
            else:
                # Authorized from outside the platform's own page: WeChat still names a pre-auth code.
                pre_auth_code = _new_secret("preauthcode@@@", 36)
            if not account.authorized:
                info_type: str | None = "authorized"
            elif account.func != granted:
                info_type = "updateauthorized"
            else:
                # "如果更新授权时，授权的权限集没有发生变化，将不会触发授权更新通知" (docs/wechat.md §7)
                info_type = None
            account.authorized = True
            self._listing = None
            account.func = granted
            account.generation += 1
            # "用户重新授权后，之前的刷新令牌会失效" (docs/wechat.md §5): every authorization gets a new one.
            account.refresh_token = _new_secret("refreshtoken@@@", 32)
            account.previous_refresh_token = None
            account.refresh_token_delivered = False
            account.auth_time = int(now)
            code = _new_secret("queryauthcode@@@", 48)
            self._trim(self.auth_codes, now)
            self.auth_codes[code] = AuthCode(appid, now + AUTH_CODE_TTL, account.generation)
        return Authorization(
            appid=appid,
            auth_code=code,
            expires_in=AUTH_CODE_TTL,
            expires_at=int(now + AUTH_CODE_TTL),
            pre_auth_code=pre_auth_code,
            info_type=info_type,
            create_time=int(now),
        )

    def revoke(self, appid: str) -> bool:
        with self.lock:
            account = self.accounts.get(appid)
            if account is None:
                raise KeyError(appid)
            if not account.authorized:
                return False
            account.authorized = False
            self._listing = None
            account.func = ()
            account.refresh_token = None
            account.previous_refresh_token = None
            account.refresh_token_delivered = False
            account.epoch += 1
            account.generation += 1
            return True

    def query_auth(self, *, code: object) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            record = self.auth_codes.get(code) if isinstance(code, str) else None
            if record is None:
                raise WeChatError(61009)
            if now >= record.expires_at:
                raise WeChatError(61010)
            account = self.accounts[record.appid]
            if not account.authorized or account.generation != record.generation:
                raise WeChatError(61009)  # superseded by a later authorization, or revoked
            # The same code arrives in the redirect and in the push, but WeChat honours a code once:
            # a second exchange gets 61009 (the platform must share the first one's result).
            if record.token is not None:
                raise WeChatError(61009, "code has been used")
            record.token = self._mint(account.tokens, appid=account.appid, epoch=account.epoch, now=now).value
            token = self.tokens[record.token]
            account.refresh_token_delivered = True
            return {
                "authorization_info": {
                    "authorizer_appid": account.appid,
                    "authorizer_access_token": token.value,
                    "expires_in": max(0, int(token.expires_at - now)),
                    "authorizer_refresh_token": account.refresh_token,
                    "func_info": _func_info(account.func),
                }
            }

    def authorizer_token(self, *, appid: object, refresh_token: object) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            account = self.accounts.get(appid) if isinstance(appid, str) else None
            if account is None or not account.authorized:
                raise WeChatError(61003)
            presented = refresh_token.encode() if isinstance(refresh_token, str) else b""
            current = secrets.compare_digest(presented, (account.refresh_token or "").encode())
            replaced = (
                account.previous_refresh_token is not None
                and now < account.previous_refresh_token_until
                and secrets.compare_digest(presented, account.previous_refresh_token.encode())
            )
            if not (current or replaced):
                raise WeChatError(61023)
            if current and self.behaviour.rotate_refresh_tokens:
                # Refresh tokens rotate; the one presented keeps working 300 s (docs/wechat.md §6).
                self._rotate_refresh_token(account, now, overlap=TOKEN_OVERLAP)
            token = self._mint(account.tokens, appid=account.appid, epoch=account.epoch, now=now)
            return {
                "authorizer_access_token": token.value,
                "expires_in": self.token_ttl,
                "authorizer_refresh_token": account.refresh_token,
            }

    def _rotate_refresh_token(self, account: Account, now: float, *, overlap: float) -> None:
        account.previous_refresh_token = account.refresh_token
        account.previous_refresh_token_until = now + overlap
        account.refresh_token = _new_secret("refreshtoken@@@", 32)

    def invalidate_refresh_token(self, appid: str) -> None:
        """What WeChat does to a still-authorized merchant when, say, the events URL changed: the
        refresh token the platform holds answers 61023 at once; the current one is only in
        api_get_authorizer_info and api_get_authorizer_list."""
        with self.lock:
            account = self._control_account(appid)
            if not account.authorized:
                raise ValueError(f"{appid} is not authorized")
            self._rotate_refresh_token(account, self.clock(), overlap=0)
            account.previous_refresh_token = None

    def authorizer_info(self, *, appid: object) -> dict[str, Any]:
        with self.lock:
            account = self.accounts.get(appid) if isinstance(appid, str) else None
            if account is None or not account.authorized:
                raise WeChatError(61003)
            info: dict[str, Any] = {
                "nick_name": account.nick_name,
                "head_img": self._head_img(account),
                "service_type_info": {"id": account.service_type},
                "verify_type_info": {"id": account.verify_type},
                "user_name": account.user_name,
                "alias": account.alias,
                "qrcode_url": "",
                "business_info": {"open_pay": 0, "open_shake": 0, "open_scan": 0, "open_card": 0, "open_store": 0},
                "idc": 1,
                "principal_name": account.principal_name,
                "signature": "",
                "account_status": account.account_status,
                "basic_config": {"is_phone_configured": True, "is_email_configured": True},
                "register_type": 0,
            }
            if account.kind == "mini_program":
                info["MiniProgramInfo"] = {
                    "network": {"RequestDomain": [], "WsRequestDomain": [], "UploadDomain": [], "DownloadDomain": []},
                    "categories": [{"first": "餐饮", "second": "点餐平台"}],
                    "visit_status": 0,
                }
            return {
                "authorizer_info": info,
                "authorization_info": {
                    "authorizer_appid": account.appid,
                    "authorizer_refresh_token": account.refresh_token,
                    "func_info": _func_info(account.func),
                },
            }

    def authorizer_list(self, *, offset: int, count: int) -> dict[str, Any]:
        with self.lock:
            if self._listing is None:
                self._listing = sorted(
                    (a for a in self.accounts.values() if a.authorized), key=lambda a: (a.auth_time or 0, a.appid)
                )
            authorized = self._listing
            page = authorized[offset : offset + count]
            items = []
            for account in page:
                item: dict[str, Any] = {"authorizer_appid": account.appid, "auth_time": account.auth_time}
                # docs/wechat.md §5: missing when the authorization code was never exchanged.
                if account.refresh_token_delivered:
                    item["refresh_token"] = account.refresh_token
                items.append(item)
            return {"total_count": len(authorized), "list": items}

    # ---------------------------------------------------------------- kf APIs

    def _kf_account_for(self, token_value: str | None, api: str) -> tuple[Account, float]:
        """WeChat's checks before any kf API does its work, in WeChat's order; charges the quota."""
        if not token_value:
            raise WeChatError(41001)
        now = self.clock()
        token = self.tokens.get(token_value)
        if token is None or token.appid is None:
            raise WeChatError(40001)
        self._check_alive(token, now)
        account = self.accounts[token.appid]
        if not account.authorized or token.epoch != account.epoch:
            raise WeChatError(40001)  # the tokens died with the authorization
        if account.is_official_account and not account.certified:
            raise WeChatError(48001)  # 公众号/服务号: 仅认证
        if KF_PERMISSION_SETS.isdisjoint(account.func):
            raise WeChatError(61007)
        # The quota counts every call that reaches the API, whatever its business outcome
        # (a call answered 65401 still costs the merchant one call).
        day = int((now + _BEIJING_OFFSET) // 86400)
        if day != account.quota_day:
            account.quota_day = day
            account.used = dict.fromkeys(QUOTA_APIS, 0)
        if account.used[api] >= account.daily_limits[api]:
            raise WeChatError(45009)
        # The per-minute limit, per wall-clock minute: "retry next minute" (docs/wechat.md §12).
        minute = int(now // 60)
        if minute != account.minute:
            account.minute = minute
            account.minute_used = dict.fromkeys(QUOTA_APIS, 0)
        if account.minute_used[api] >= account.minute_limit(api, self.behaviour):
            raise WeChatError(45011)
        account.minute_used[api] += 1
        account.used[api] += 1
        if not account.kf_enabled:
            raise WeChatError(65400)
        return account, now

    def kf_add(self, *, token: str | None, kf_account: object, nickname: object, body_error: int | None = None) -> None:
        with self.lock:
            account, _ = self._kf_account_for(token, "add")
            if body_error is not None:
                raise WeChatError(body_error)
            if not isinstance(kf_account, str):
                raise WeChatError(47001)
            match = _KF_ACCOUNT_RE.fullmatch(kf_account)
            if match is None or not account.alias or match.group(2) != account.alias:
                raise WeChatError(65404)
            if not isinstance(nickname, str) or not nickname.strip() or len(nickname) > _MAX_NICKNAME:
                raise WeChatError(65403)
            if kf_account in account.kf:
                raise WeChatError(65406)
            if len(account.kf) >= MAX_KF_ACCOUNTS:
                raise WeChatError(65405)
            self._add_kf(account, KfAccount(kf_account, nickname, ""))

    def kf_del(self, *, token: str | None, kf_account: object, body_error: int | None = None) -> None:
        """`body_error`: the body could not be read; WeChat says so only after checking the token."""
        with self.lock:
            account, _ = self._kf_account_for(token, "del")
            if body_error is not None:
                raise WeChatError(body_error)
            if not isinstance(kf_account, str) or account.kf.pop(kf_account, None) is None:
                raise WeChatError(65401)

    def kf_list(self, *, token: str | None, online: bool = False) -> dict[str, Any]:
        with self.lock:
            account, now = self._kf_account_for(token, "getkflist")
            if online:
                return {
                    "kf_online_list": [
                        {"kf_account": k.kf_account, "status": 0, "kf_id": k.kf_id, "accepted_case": 0}
                        for k in account.kf.values()
                        if k.kf_wx
                    ]
                }
            return {"kf_list": [k.as_wechat(now) for k in account.kf.values()]}

    def _add_kf(self, account: Account, kf: KfAccount) -> KfAccount:
        kf.kf_id = str(account.next_kf_id)
        account.next_kf_id += 1
        if not kf.kf_headimgurl and self.public_base:
            kf.kf_headimgurl = f"{self.public_base}/sandbox/avatar/{account.appid}-{kf.kf_id}.svg"
        account.kf[kf.kf_account] = kf
        return kf

    def _head_img(self, account: Account) -> str:
        if account.head_img:
            return account.head_img
        return f"{self.public_base}/sandbox/avatar/{account.appid}.svg" if self.public_base else ""

    # ---------------------------------------------------------------- quota APIs (getApiQuota, clear_quota)

    def quota_get(self, *, token: str | None, cgi_path: object) -> dict[str, Any]:
        api = _QUOTA_PATHS.get(cgi_path) if isinstance(cgi_path, str) else None
        with self.lock:
            account = self._account_for_plain_token(token)
            if api is None:
                raise WeChatError(47001)
            self._roll_quota_day(account)
            limit, used = account.daily_limits[api], account.used[api]
            per_minute = account.minute_limit(api, self.behaviour)
            return {
                "errcode": 0,
                "errmsg": "ok",
                "quota": {"daily_limit": limit, "used": used, "remain": max(0, limit - used)},
                # One limit is enforced, on calls a platform makes for the account; both blocks
                # report it, as the page's example shows both (docs/wechat.md §12).
                "rate_limit": {"call_count": per_minute, "refresh_second": 60},
                "component_rate_limit": {"call_count": per_minute, "refresh_second": 60},
            }

    def clear_quota(self, *, token: str | None, appid: object) -> None:
        with self.lock:
            account = self._account_for_plain_token(token)
            if appid != account.appid:
                raise WeChatError(40013)
            if not account.certified:
                raise WeChatError(48001)  # clear_quota: certified accounts only (docs/wechat.md §12)
            month = time.gmtime(self.clock() + _BEIJING_OFFSET)
            key = month.tm_year * 12 + month.tm_mon
            if key != account.clear_quota_month:
                account.clear_quota_month, account.clear_quota_count = key, 0
            if account.clear_quota_count >= CLEAR_QUOTA_PER_MONTH:
                raise WeChatError(48006)
            account.clear_quota_count += 1
            account.used = dict.fromkeys(QUOTA_APIS, 0)

    def _account_for_plain_token(self, token_value: str | None) -> Account:
        if not token_value:
            raise WeChatError(41001)
        token = self.tokens.get(token_value)
        if token is None or token.appid is None:
            raise WeChatError(40001)
        self._check_alive(token, self.clock())
        account = self.accounts[token.appid]
        if not account.authorized or token.epoch != account.epoch:
            raise WeChatError(40001)
        return account

    def _roll_quota_day(self, account: Account) -> None:
        day = int((self.clock() + _BEIJING_OFFSET) // 86400)
        if day != account.quota_day:
            account.quota_day = day
            account.used = dict.fromkeys(QUOTA_APIS, 0)

    # ---------------------------------------------------------------- control

    def create_account(
        self,
        *,
        nick_name: str,
        kind: str,
        certified: bool = True,
        kf_enabled: bool = True,
        alias: str = "",
        appid: str | None = None,
        principal_name: str = "",
        user_name: str = "",
        verify_type: int | None = None,
        service_type: int | None = None,
    ) -> Account:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if not nick_name:
            raise ValueError("nick_name is required")
        if appid is not None and not APPID_RE.fullmatch(appid):
            raise ValueError("appid must be 'wx' followed by 16 lowercase hex digits")
        with self.lock:
            if appid is None:
                appid = "wx" + secrets.token_hex(8)
            if appid in self.accounts:
                raise FileExistsError(appid)
            account = Account(
                appid=appid,
                nick_name=nick_name,
                kind=kind,
                verify_type=verify_type if verify_type is not None else (0 if certified else -1),
                service_type=service_type if service_type is not None else (2 if kind == "service" else 0),
                kf_enabled=kf_enabled,
                alias=alias,
                user_name=user_name or "gh_" + appid[2:14],
                principal_name=principal_name or nick_name,
            )
            self._roll_quota_day(account)
            self.accounts[appid] = account
            return account

    def create_authorized_accounts(
        self, appids: list[str], *, kind: str = "service", func: Iterable[int] = (1, 6)
    ) -> dict[str, str]:
        """Many accounts at once, each already authorized to this component with its code exchanged
        (a refresh token issued and delivered), and no push: WeChat's side of a platform that has
        that many merchants (the scale bench lists 100,000). Returns each account's refresh token."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        granted = tuple(sorted({int(f) for f in func}))
        if not granted:
            raise ValueError("grant at least one permission set")
        bad = [a for a in appids if not isinstance(a, str) or not APPID_RE.fullmatch(a)]
        if bad:
            raise ValueError(f"appids must be 'wx' followed by 16 lowercase hex digits: {bad[:3]}")
        if len(set(appids)) != len(appids):
            raise ValueError("appids repeat")
        with self.lock:
            taken = [a for a in appids if a in self.accounts]
            if taken:
                raise FileExistsError(", ".join(taken[:10]))
            now = int(self.clock())
            tokens = {}
            for appid in appids:
                name = f"bulk {appid[-6:]}"
                account = Account(
                    appid=appid,
                    nick_name=name,
                    kind=kind,
                    verify_type=0,
                    service_type=2 if kind == "service" else 0,
                    kf_enabled=True,
                    alias="",
                    user_name="gh_" + appid[2:14],
                    principal_name=name,
                    authorized=True,
                    func=granted,
                    refresh_token=_new_secret("refreshtoken@@@", 32),
                    refresh_token_delivered=True,
                    auth_time=now,
                    generation=1,
                )
                self._roll_quota_day(account)
                self.accounts[appid] = account
                tokens[appid] = account.refresh_token or ""
            self._listing = None
        return tokens

    def update_account(self, appid: str, changes: dict[str, Any]) -> Account:
        with self.lock:
            account = self._control_account(appid)
            for key, value in changes.items():
                if key == "certified":
                    account.verify_type = 0 if value else -1
                elif key in ("verify_type", "service_type", "account_status"):
                    setattr(account, key, int(value))
                elif key == "kf_enabled":
                    account.kf_enabled = bool(value)
                elif key in ("nick_name", "alias", "principal_name", "head_img"):
                    setattr(account, key, str(value))
                else:
                    raise ValueError(f"cannot change {key!r}")
            return account

    def seed_kf(self, appid: str, items: list[dict[str, Any]]) -> list[KfAccount]:
        """Puts kf accounts straight into an account, bypassing add's rules (and its limit of 100)."""
        with self.lock:
            account = self._control_account(appid)
            raw_names = [item.get("kf_account") for item in items]
            names = [n for n in raw_names if isinstance(n, str) and n]
            if len(names) != len(raw_names):
                raise ValueError("every item needs a kf_account")
            duplicates = sorted({n for n in names if n in account.kf or names.count(n) > 1})
            if duplicates:
                raise FileExistsError(", ".join(duplicates[:10]))
            created = []
            for item in items:
                expire = item.get("invite_expire_time")
                created.append(
                    self._add_kf(
                        account,
                        KfAccount(
                            kf_account=item["kf_account"],
                            kf_nick=str(
                                item.get("kf_nick") or item.get("nickname") or item["kf_account"].split("@")[0]
                            ),
                            kf_id="",
                            kf_headimgurl=str(item.get("kf_headimgurl") or ""),
                            kf_wx=item.get("kf_wx"),
                            invite_wx=item.get("invite_wx"),
                            invite_expire_time=int(expire) if expire is not None else None,
                            invite_status=item.get("invite_status"),
                        ),
                    )
                )
            return created

    def set_quota(
        self,
        appid: str,
        *,
        api: str,
        daily_limit: int | None,
        used: int | None,
        minute_limit: int | None = None,
        exhaust_minute: bool = False,
    ) -> Account:
        """``exhaust_minute``: this wall-clock minute's calls are spent (45011 until the next minute)."""
        if api not in QUOTA_APIS:
            raise ValueError(f"api must be one of {', '.join(QUOTA_APIS)}")
        with self.lock:
            account = self._control_account(appid)
            self._roll_quota_day(account)
            if daily_limit is not None:
                account.daily_limits[api] = int(daily_limit)
            if used is not None:
                account.used[api] = int(used)
            if minute_limit is not None:
                account.minute_limits[api] = int(minute_limit)
            if exhaust_minute:
                minute = int(self.clock() // 60)
                if minute != account.minute:
                    account.minute, account.minute_used = minute, dict.fromkeys(QUOTA_APIS, 0)
                account.minute_used[api] = account.minute_limit(api, self.behaviour)
            return account

    def reset_quota(self, appid: str | None = None) -> None:
        with self.lock:
            accounts = [self._control_account(appid)] if appid else list(self.accounts.values())
            for account in accounts:
                account.used = dict.fromkeys(QUOTA_APIS, 0)

    def expire(self, what: str, appid: str | None = None) -> int:
        """Makes the named credentials expire now; answers how many were touched."""
        with self.lock:
            now = self.clock()
            if what == "component":
                values: Iterable[str] = list(self.component_tokens)
            elif what == "authorizer":
                accounts = [self._control_account(appid)] if appid else list(self.accounts.values())
                values = [v for a in accounts for v in a.tokens]
            elif what == "ticket":
                for ticket in self.tickets:
                    self.tickets[ticket] = now - TICKET_VALIDITY - 1
                return len(self.tickets)
            elif what in ("pre_auth_code", "auth_code"):
                codes: dict[str, Any] = self.pre_auth_codes if what == "pre_auth_code" else self.auth_codes
                for record in codes.values():
                    record.expires_at = min(record.expires_at, now)
                return len(codes)
            else:
                raise ValueError("what must be component, authorizer, ticket, pre_auth_code or auth_code")
            touched = 0
            for value in values:
                token = self.tokens.get(value)
                if token is not None:
                    token.expires_at = min(token.expires_at, now)
                    touched += 1
            return touched

    def _control_account(self, appid: str | None) -> Account:
        account = self.accounts.get(appid or "")
        if account is None:
            raise LookupError(f"no account {appid}")
        return account

    def account_summary(self, appid: str) -> dict[str, Any]:
        with self.lock:
            return self._control_account(appid).summary(self.clock())

    def account_summaries(self) -> list[dict[str, Any]]:
        with self.lock:
            now = self.clock()
            return [a.summary(now) for a in self.accounts.values()]

    def kf_snapshot(self, appid: str) -> list[dict[str, Any]]:
        with self.lock:
            account = self._control_account(appid)
            now = self.clock()
            return [k.as_wechat(now) for k in account.kf.values()]

    def accounts_for_page(self, auth_type: str | None, biz_appid: str | None) -> list[Account]:
        """biz_appid has priority over auth_type when both are sent (docs/wechat.md §4)."""
        with self.lock:
            accounts = list(self.accounts.values())
        if biz_appid:
            return [a for a in accounts if a.appid == biz_appid]
        if auth_type == "1":
            return [a for a in accounts if a.is_official_account]
        if auth_type == "2":
            return [a for a in accounts if a.kind == "mini_program"]
        return accounts


def permission_sets_for(account: Account, category_ids: Iterable[int] | None = None) -> dict[int, str]:
    """The sets WeChat's page offers this account: its kind's table, limited to category_id_list
    when one was sent (an empty intersection shows the whole table)."""
    table = PERMISSION_SETS_BY_GROUP[account.permission_group]
    wanted = set(category_ids or ())
    limited = {k: v for k, v in table.items() if k in wanted}
    return limited or dict(table)


_QUOTA_PATHS = {
    "/customservice/kfaccount/add": "add",
    "/customservice/kfaccount/del": "del",
    "/cgi-bin/customservice/getkflist": "getkflist",
}


def _func_info(func: Iterable[int]) -> list[dict[str, Any]]:
    return [{"funcscope_category": {"id": f}} for f in func]
