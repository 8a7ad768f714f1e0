"""The only code that makes HTTP calls to WeChat.

One pooled session, a (connect, read) timeout on every call, no redirects. Every failure becomes a
`WeChatError` from `errors.py`; tokens and secrets never reach an exception message or a log line
(requests puts the full URL, query string included, into its exception messages).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, PoolError, ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from wechat.errors import MalformedResponse, Permanent, Transient, WeChatError, error_for
from wechat.results import (
    ApiQuota,
    AuthorizationInfo,
    AuthorizerInfo,
    KfAccountInfo,
    coerce_int,
    parse_api_quota,
    parse_authorization_info,
    parse_authorizer_info,
    parse_kf_list,
)
from wechat.scrub import mask_secrets, scrub

__all__ = [
    "ApiQuota",
    "AuthorizationInfo",
    "AuthorizerInfo",
    "KfAccountInfo",
    "WeChatClient",
    "parse_authorization_info",
    "parse_authorizer_info",
    "parse_kf_list",
]

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
# Told about every call once it ended: (path, errcode or None, outcome, seconds). Metrics use it; it
# never sees a token, a body or a query string.
CallObserver = Callable[[str, "int | None", str, float], None]

_DETAIL_MAX = 300


def _request_was_sent(exc: requests.ConnectionError) -> bool:
    """Whether the connection broke after the request went out, so WeChat may have acted on it.

    requests wraps urllib3's errors: connect failures (refused, DNS, TLS handshake, connect timeout,
    pool) mean WeChat never saw the call; any other urllib3 error ("Connection aborted", a read
    timeout while reading the body) happened with the request on the wire. A ConnectionError with
    nothing from urllib3 inside is taken as a connect failure.
    """
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, (ConnectTimeoutError, Urllib3SSLError, ProxyError, PoolError)):
        return False  # NewConnectionError and NameResolutionError are ConnectTimeoutErrors in urllib3 2
    return isinstance(reason, HTTPError)


class WeChatClient:
    def __init__(
        self,
        *,
        api_base: str,
        component_appid: str,
        component_appsecret: str,
        timeout: tuple[float, float] = (3.05, 10.0),
        session: requests.Session | None = None,
        pool_maxsize: int = 64,
        observer: CallObserver | None = None,
    ) -> None:
        if urlsplit(api_base).scheme not in ("http", "https"):
            raise ValueError("api_base must be an http(s) URL")
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError("timeout must be a positive (connect, read) pair")
        self._api_base = api_base.rstrip("/")
        self._component_appid = component_appid
        self._component_appsecret = component_appsecret
        self._timeout = (float(timeout[0]), float(timeout[1]))
        if session is None:
            session = requests.Session()
            # No urllib3 retries: what to retry, and when, is the caller's decision (errors.py, tasks).
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._observer = observer

    def __repr__(self) -> str:
        return f"WeChatClient(api_base={self._api_base!r}, component_appid={self._component_appid!r})"

    def close(self) -> None:
        self._session.close()

    # --- component (third-party platform) APIs, docs/wechat.md §2-§6 ------------------------------------------

    def component_token(self, *, verify_ticket: str) -> JSON:
        return self._post(
            "/cgi-bin/component/api_component_token",
            {
                "component_appid": self._component_appid,
                "component_appsecret": self._component_appsecret,
                "component_verify_ticket": verify_ticket,
            },
            secrets=(verify_ticket,),
            require=("component_access_token", "expires_in"),
        )

    def create_preauthcode(self, *, component_token: str) -> JSON:
        return self._post(
            "/cgi-bin/component/api_create_preauthcode",
            {"component_appid": self._component_appid},
            component_token=component_token,
            require=("pre_auth_code",),
        )

    def query_auth(self, *, component_token: str, authorization_code: str) -> JSON:
        return self._post(
            "/cgi-bin/component/api_query_auth",
            {"component_appid": self._component_appid, "authorization_code": authorization_code},
            component_token=component_token,
        )

    def authorizer_token(self, *, component_token: str, authorizer_appid: str, refresh_token: str) -> JSON:
        return self._post(
            "/cgi-bin/component/api_authorizer_token",
            {
                "component_appid": self._component_appid,
                "authorizer_appid": authorizer_appid,
                "authorizer_refresh_token": refresh_token,
            },
            component_token=component_token,
            secrets=(refresh_token,),
            require=("authorizer_access_token", "expires_in"),
        )

    def get_authorizer_info(self, *, component_token: str, authorizer_appid: str) -> JSON:
        return self._post(
            "/cgi-bin/component/api_get_authorizer_info",
            {"component_appid": self._component_appid, "authorizer_appid": authorizer_appid},
            component_token=component_token,
        )

    def get_authorizer_list(self, *, component_token: str, offset: int = 0, count: int = 500) -> JSON:
        if offset < 0 or not 1 <= count <= 500:  # WeChat caps count at 500 (docs/wechat.md §5)
            raise ValueError("offset must be >= 0 and count in 1..500")
        return self._post(
            "/cgi-bin/component/api_get_authorizer_list",
            {"component_appid": self._component_appid, "offset": offset, "count": count},
            component_token=component_token,
        )

    def start_push_ticket(self) -> JSON:
        return self._post(
            "/cgi-bin/component/api_start_push_ticket",
            {"component_appid": self._component_appid, "component_secret": self._component_appsecret},
        )

    # --- customer-service account APIs, docs/wechat.md §9 (authorizer_access_token as access_token) ---------

    def kf_delete(self, *, access_token: str, kf_account: str) -> JSON:
        # POST with a JSON body, as the current docs say (docs/wechat.md §9), not the GET of older SDKs.
        return self._post("/customservice/kfaccount/del", {"kf_account": kf_account}, access_token=access_token)

    def kf_list(self, *, access_token: str) -> list[KfAccountInfo]:
        # kf_list is required: an answer without it must not read as "no accounts".
        data = self._call(
            "GET",
            "/cgi-bin/customservice/getkflist",
            token_param="access_token",  # noqa: S106 (the query parameter's name, not a secret)
            token=access_token,
            require=("kf_list",),
        )
        return parse_kf_list(data)

    # --- quotas, docs/wechat.md §12 -------------------------------------------------------------------------

    def api_quota(self, *, access_token: str, cgi_path: str) -> ApiQuota:
        """openapi/quota/get with the merchant's token: its daily quota and per-period rate limits for one API."""
        if not cgi_path.startswith("/"):
            raise ValueError("cgi_path is an API path such as /customservice/kfaccount/del")
        data = self._post("/cgi-bin/openapi/quota/get", {"cgi_path": cgi_path}, access_token=access_token)
        return parse_api_quota(data)

    # --- transport ---------------------------------------------------------------------------

    def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        access_token: str | None = None,
        component_token: str | None = None,
        secrets: tuple[str, ...] = (),
        require: tuple[str, ...] = (),
    ) -> JSON:
        if access_token is not None:
            token_param, token = "access_token", access_token
        elif component_token is not None:
            token_param, token = "component_access_token", component_token
        else:
            token_param, token = None, None
        return self._call(
            "POST", path, token_param=token_param, token=token, body=body, secrets=secrets, require=require
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        token_param: str | None,
        token: str | None,
        body: Mapping[str, Any] | None = None,
        secrets: tuple[str, ...] = (),
        require: tuple[str, ...] = (),
    ) -> JSON:
        if token_param is not None and not token:
            raise ValueError(f"{token_param} is required for {path}")
        params = {token_param: token} if token_param is not None else None
        headers = None
        payload = None
        if body is not None:
            # ensure_ascii=False: non-ASCII text goes over the wire as UTF-8, as WeChat's examples show.
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8"}
        hidden = (token or "", self._component_appsecret, *secrets)

        started = time.monotonic()
        try:
            answer = self._exchange(
                method, path, params=params, data=payload, headers=headers, hidden=hidden, require=require
            )
        except WeChatError as exc:
            self._observe(path, exc.errcode, exc.reason, started)
            raise
        self._observe(path, 0, "ok", started)
        return answer

    def _observe(self, path: str, errcode: int | None, outcome: str, started: float) -> None:
        if self._observer is None:
            return
        try:
            self._observer(path, errcode, outcome, time.monotonic() - started)
        except Exception:  # metrics must never fail a call to WeChat
            logger.exception("the WeChat call observer failed")

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | None] | None,
        data: bytes | None,
        headers: dict[str, str] | None,
        hidden: tuple[str, ...],
        require: tuple[str, ...],
    ) -> JSON:
        failure: WeChatError | None = None
        try:
            response = self._session.request(
                method,
                self._api_base + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = _transport_error(exc, path, hidden)
        # Raised outside the except block so the requests exception (whose message holds the full
        # URL with the token) is not chained as __context__ into tracebacks and error reports.
        if failure is not None:
            _log_failure(method, path, failure)
            raise failure

        try:
            return _require(_read(response, path, hidden), path, require)
        except WeChatError as exc:
            _log_failure(method, path, exc)
            raise


# The request could not even be built (a bad api_base, a newline in a token): nothing was sent.
_UNBUILDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


def _transport_error(exc: requests.RequestException, path: str, hidden: Iterable[str]) -> WeChatError:
    detail = scrub(f"{type(exc).__name__}: {exc}", hidden)[:_DETAIL_MAX]
    if isinstance(exc, requests.ConnectTimeout):
        return Transient(None, detail, outcome_unknown=False, path=path)
    if isinstance(exc, requests.ReadTimeout):
        return Transient(None, detail, outcome_unknown=True, path=path)
    if isinstance(exc, requests.ConnectionError):
        return Transient(None, detail, outcome_unknown=_request_was_sent(exc), path=path)
    if isinstance(exc, _UNBUILDABLE):
        return Permanent(None, detail, outcome_unknown=False, path=path)
    # ChunkedEncodingError, ContentDecodingError, …: the answer broke off mid-way.
    return Transient(None, detail, outcome_unknown=True, path=path)


def _read(response: requests.Response, path: str, hidden: Iterable[str]) -> JSON:
    status = response.status_code
    if not 200 <= status < 300:
        if status >= 500:
            raise Transient(None, f"HTTP {status}", outcome_unknown=True, http_status=status, path=path)
        if status in (408, 429):  # the server refused before doing the work: try again later
            raise Transient(None, f"HTTP {status}", outcome_unknown=False, http_status=status, path=path)
        # 3xx (we never follow redirects: a redirect means a wrong api_base) and other 4xx.
        raise Permanent(None, f"HTTP {status}", outcome_unknown=False, http_status=status, path=path)
    try:
        data = json.loads(response.content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: HTML error pages, truncated bodies
        data = None
    if not isinstance(data, dict):
        raise MalformedResponse(None, "body is not a JSON object", outcome_unknown=True, http_status=status, path=path)
    errcode = coerce_int(data.get("errcode", 0))
    if errcode is None:
        raise MalformedResponse(None, "errcode is not an integer", outcome_unknown=True, http_status=status, path=path)
    if errcode != 0:
        errmsg = data.get("errmsg")
        raise error_for(errcode, mask_secrets(errmsg if isinstance(errmsg, str) else "", hidden), path=path)
    return data


def _require(data: JSON, path: str, keys: tuple[str, ...]) -> JSON:
    missing = [k for k in keys if data.get(k) in (None, "")]
    if missing:
        raise MalformedResponse(None, f"answer lacks {', '.join(missing)}", outcome_unknown=True, path=path)
    return data


def _log_failure(method: str, path: str, exc: WeChatError) -> None:
    # Path and codes only: never the query string (tokens) or the request body (secrets).
    logger.warning(
        "wechat %s %s failed: %s errcode=%s http_status=%s rid=%s",
        method,
        path,
        type(exc).__name__,
        exc.errcode,
        exc.http_status,
        exc.rid,
    )
