"""WeChat's API surface as the documents describe it (paths, methods, JSON, errcodes).

Component APIs take the component token as `component_access_token` (old docs, every SDK) or
`access_token` (new docs); authorizer APIs take `access_token`. Errors are HTTP 200 JSON.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .errcodes import OK, WeChatError
from .faults import Fault
from .pages import authorization_page, error_page
from .state import PERMISSION_SETS_BY_GROUP
from .wire import Request, Response, html_response, json_response, wechat_error

if TYPE_CHECKING:
    from .app import Sandbox

Handler = Callable[["Sandbox", Request], "dict[str, Any] | Response"]

_NGINX_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    b"<hr><center>nginx</center></body></html>"
)
_GARBAGE_BODIES = {
    "html": (_NGINX_502, "text/html"),
    "text": (b"system busy, please try again later", "text/plain"),
    "empty": (b"", "application/json; encoding=utf-8"),
}


def _component_token(req: Request) -> str | None:
    return req.arg("component_access_token") or req.arg("access_token")


def _require_post(req: Request) -> None:
    if req.method != "POST":
        raise WeChatError(43002)


def _component_call(sb: Sandbox, req: Request) -> dict[str, Any]:
    """The checks every token-bearing component API makes first; answers the body."""
    _require_post(req)
    sb.state.check_component_token(_component_token(req))
    data = req.json_object()
    sb.state.check_component_appid(data.get("component_appid"))
    return data


# ---------------------------------------------------------------- component APIs


def api_component_token(sb: Sandbox, req: Request) -> dict[str, Any]:
    _require_post(req)
    data = req.json_object()
    return sb.state.component_token(
        appid=data.get("component_appid"),
        secret=data.get("component_appsecret"),
        ticket=data.get("component_verify_ticket"),
    )


def api_start_push_ticket(sb: Sandbox, req: Request) -> dict[str, Any]:
    _require_post(req)
    data = req.json_object()
    # This page answers 40013 (invalid appid) for a wrong component_appid, not 61011 (docs/wechat.md §2).
    appid = data.get("component_appid")
    if appid and appid != sb.state.component_appid:
        raise WeChatError(40013)
    sb.state.check_component_credentials(appid, data.get("component_secret"))
    sb.push_ticket_in_background()
    return dict(OK)


def api_create_preauthcode(sb: Sandbox, req: Request) -> dict[str, Any]:
    _component_call(sb, req)
    return sb.state.create_pre_auth_code()


def api_query_auth(sb: Sandbox, req: Request) -> dict[str, Any]:
    data = _component_call(sb, req)
    return sb.state.query_auth(code=data.get("authorization_code"))


def api_authorizer_token(sb: Sandbox, req: Request) -> dict[str, Any]:
    data = _component_call(sb, req)
    return sb.state.authorizer_token(
        appid=data.get("authorizer_appid"), refresh_token=data.get("authorizer_refresh_token")
    )


def api_get_authorizer_info(sb: Sandbox, req: Request) -> dict[str, Any]:
    data = _component_call(sb, req)
    return sb.state.authorizer_info(appid=data.get("authorizer_appid"))


def api_get_authorizer_list(sb: Sandbox, req: Request) -> dict[str, Any]:
    data = _component_call(sb, req)
    try:
        offset = max(0, int(data.get("offset", 0)))
        count = min(500, max(0, int(data.get("count", 500))))
    except (TypeError, ValueError):
        raise WeChatError(47001) from None
    return sb.state.authorizer_list(offset=offset, count=count)


# ---------------------------------------------------------------- the authorization page


def referer_problem(sb: Sandbox, referer: str) -> str | None:
    """WeChat serves its authorization page only to a browser coming from the registered domain (docs/wechat.md §4)."""
    if not referer:
        return "授权入口页所在域名：空 · the page must be opened from the platform's registered domain (no Referer)"
    registered = sb.config.registered_domain()
    if registered is None:
        return None
    parts = urlsplit(referer)
    seen = parts.netloc if ":" in registered else (parts.hostname or "")
    if parts.scheme not in ("http", "https") or seen.lower() != registered.lower():
        return (
            f"授权入口页所在域名：{parts.netloc or referer[:100]} · not the platform's registered domain ({registered})"
        )
    return None


def componentloginpage(sb: Sandbox, req: Request) -> Response:
    referer = referer_problem(sb, req.referer)
    if referer:
        return html_response(error_page(referer), status=403)
    problem = _page_problem(sb, req.arg("component_appid"), req.arg("pre_auth_code"), req.arg("redirect_uri"))
    if problem:
        return html_response(error_page(problem), status=400)
    accounts = sb.state.accounts_for_page(req.arg("auth_type"), req.arg("biz_appid"))
    if not accounts:
        return html_response(error_page("没有可授权的帐号 · no account can be authorized here"), status=400)
    return html_response(
        authorization_page(
            component_appid=sb.state.component_appid,
            pre_auth_code=req.arg("pre_auth_code") or "",
            redirect_uri=req.arg("redirect_uri") or "",
            accounts=accounts,
            category_ids=_category_ids(req.arg("category_id_list")),
        )
    )


def _category_ids(value: str | None) -> list[int]:
    """category_id_list: permission-set ids joined with "|" (docs/wechat.md §4); junk is ignored."""
    return [int(part) for part in (value or "").split("|") if part.strip().isdigit()]


def componentloginpage_confirm(sb: Sandbox, req: Request) -> Response:
    if req.method != "POST":
        return html_response(error_page("请从授权页提交 · submit the authorization form"), status=405)
    form = req.form()

    def field(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values else None

    pre_auth_code, redirect_uri, appid = field("pre_auth_code"), field("redirect_uri"), field("appid")
    problem = _page_problem(sb, field("component_appid") or sb.state.component_appid, pre_auth_code, redirect_uri)
    if problem:
        return html_response(error_page(problem), status=400)
    if not appid or appid not in sb.state.accounts:
        return html_response(error_page("请选择一个帐号 · choose an account"), status=400)
    account = sb.state.accounts[appid]
    try:
        # The page names each account's sets func_<appid>; a hand-made form may say func.
        func = [int(f) for f in form.get(f"func_{appid}", []) or form.get("func", [])]
    except ValueError:
        return html_response(error_page("权限集无效 · invalid permission set"), status=400)
    if not func:
        return html_response(error_page("请至少选择一个权限集 · grant at least one permission set"), status=400)
    offered = PERMISSION_SETS_BY_GROUP[account.permission_group]
    if not set(func) <= set(offered):
        # The Official Account and Mini Program tables are disjoint (docs/wechat.md §10).
        wrong = ", ".join(str(f) for f in sorted(set(func) - set(offered)))
        return html_response(
            error_page(f"权限集 {wrong} 不适用于该帐号 · not offered to this kind of account"), status=400
        )
    try:
        auth, _ = sb.authorize(appid=appid, func=func, pre_auth_code=pre_auth_code)
    except ValueError as exc:  # lost a race for the same single-use pre-auth code
        return html_response(error_page(str(exc)), status=400)
    assert redirect_uri is not None
    location = redirect_with_code(
        redirect_uri, auth.auth_code, auth.expires_in, query_mode=sb.state.behaviour.redirect_query
    )
    return Response(status=302, headers={"Location": location})


def _page_problem(
    sb: Sandbox, component_appid: str | None, pre_auth_code: str | None, redirect_uri: str | None
) -> str | None:
    if component_appid != sb.state.component_appid:
        return "第三方平台 appid 无效 · invalid component_appid"
    problem = sb.state.pre_auth_code_problem(pre_auth_code)
    if problem == "used":
        return "该预授权码已被使用 · this pre_auth_code has already been used"
    if problem == "expired":
        return "预授权码已过期 · this pre_auth_code has expired"
    if problem:
        return "预授权码无效 · invalid pre_auth_code"
    if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
        return "回调地址无效 · invalid redirect_uri"
    registered = sb.config.registered_domain()
    if sb.state.behaviour.check_redirect_domain and registered and not _on_domain(redirect_uri, registered):
        # redirect_uri must be on the registered authorization domain (docs/wechat.md §4).
        return f"回调地址的域名与登记的授权发起页域名不一致 · redirect_uri is not on {registered}"
    return None


def _on_domain(url: str, registered: str) -> bool:
    parts = urlsplit(url)
    seen = parts.netloc if ":" in registered else (parts.hostname or "")
    return seen.lower() == registered.lower()


def redirect_with_code(redirect_uri: str, auth_code: str, expires_in: int, *, query_mode: str = "keep") -> str:
    """Where WeChat sends the browser back: redirect_uri plus auth_code and expires_in.

    WeChat does not keep a redirect_uri's query intact (docs/wechat.md §4): parameters after the
    first are dropped (``drop``) or joined with a literal ``&amp;`` (``escape``).
    """
    parts = urlsplit(redirect_uri)
    query = parts.query
    if query and query_mode != "keep":
        first, *rest = query.split("&")
        query = first if query_mode == "drop" or not rest else "&amp;".join([first, *rest])
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    separator = "&" if query else "?"
    return base + separator + urlencode({"auth_code": auth_code, "expires_in": expires_in})


# ---------------------------------------------------------------- kf APIs (authorizer token)


def kfaccount_add(sb: Sandbox, req: Request) -> dict[str, Any]:
    _require_post(req)
    data: dict[str, Any] = {}
    body_error = None
    try:
        data = req.json_object()
    except WeChatError as exc:
        body_error = exc.errcode
    sb.state.kf_add(
        token=req.arg("access_token"),
        kf_account=data.get("kf_account"),
        nickname=data.get("nickname"),
        body_error=body_error,
    )
    return dict(OK)


def kfaccount_del(sb: Sandbox, req: Request) -> dict[str, Any]:
    # The docs say POST with a JSON body; most SDKs still send GET (or POST) with kf_account in the
    # query string (docs/wechat.md §9). Both are accepted; the body wins when it names an account.
    kf_account: object = None
    body_error = None
    if req.body.strip():
        data = req.parsed_body()
        if isinstance(data, dict):
            kf_account = data.get("kf_account")
        else:
            body_error = 47001
    if kf_account is None and body_error is None:
        kf_account = req.arg("kf_account")
    sb.state.kf_del(token=req.arg("access_token"), kf_account=kf_account, body_error=body_error)
    return dict(OK)


def getkflist(sb: Sandbox, req: Request) -> dict[str, Any]:
    return sb.state.kf_list(token=req.arg("access_token"))


def getonlinekflist(sb: Sandbox, req: Request) -> dict[str, Any]:
    return sb.state.kf_list(token=req.arg("access_token"), online=True)


def quota_get(sb: Sandbox, req: Request) -> dict[str, Any]:
    # Only an authorizer's own quotas are metered here; a component token gets 40001.
    _require_post(req)
    data = req.json_object()
    return sb.state.quota_get(token=req.arg("access_token"), cgi_path=data.get("cgi_path"))


def clear_quota(sb: Sandbox, req: Request) -> dict[str, Any]:
    _require_post(req)
    data = req.json_object()
    sb.state.clear_quota(token=req.arg("access_token"), appid=data.get("appid"))
    return dict(OK)


ROUTES: dict[str, Handler] = {
    "/cgi-bin/component/api_component_token": api_component_token,
    "/cgi-bin/component/api_start_push_ticket": api_start_push_ticket,
    "/cgi-bin/component/api_create_preauthcode": api_create_preauthcode,
    "/cgi-bin/component/api_query_auth": api_query_auth,
    "/cgi-bin/component/api_authorizer_token": api_authorizer_token,
    "/cgi-bin/component/api_get_authorizer_info": api_get_authorizer_info,
    "/cgi-bin/component/api_get_authorizer_list": api_get_authorizer_list,
    "/cgi-bin/componentloginpage": componentloginpage,
    "/cgi-bin/componentloginpage/confirm": componentloginpage_confirm,
    # The mobile (H5) entry points show the same page (docs/wechat.md §4).
    "/safe/bindcomponent": componentloginpage,
    "/wxaopen/safe/bindcomponent": componentloginpage,
    "/customservice/kfaccount/add": kfaccount_add,
    "/customservice/kfaccount/del": kfaccount_del,
    "/cgi-bin/customservice/getkflist": getkflist,
    "/cgi-bin/customservice/getonlinekflist": getonlinekflist,
    "/cgi-bin/openapi/quota/get": quota_get,
    "/cgi-bin/clear_quota": clear_quota,
}


# ---------------------------------------------------------------- dispatch, faults, the call log


def handle(sb: Sandbox, req: Request) -> Response:
    started = time.time()
    token = req.arg("access_token") or req.arg("component_access_token")
    appid = sb.state.appid_for_token(token)
    if appid is None:
        body = req.parsed_body()
        if isinstance(body, dict) and isinstance(body.get("authorizer_appid"), str):
            appid = body["authorizer_appid"]
    route = ROUTES.get(req.path)
    fault = sb.faults.take(req.path, appid)
    latency_ms = sb.faults.latency_ms(req.path) + (fault.latency_ms if fault else 0)

    sb.calls.begin(appid)
    try:
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if fault is not None and fault.kind != "latency" and not fault.applied:
            if fault.timeout is not None:
                time.sleep(fault.timeout)
                response = _fault_response(Fault(path=req.path, errcode=-1))
            else:
                response = _fault_response(fault)
        else:
            response = _run(sb, req, route)
            if fault is not None and fault.kind != "latency":
                if fault.timeout is not None:
                    time.sleep(fault.timeout)
                elif fault.garbage == "truncated":
                    response.body = response.body[: max(1, len(response.body) // 2)]
                    response.errcode = None
                else:
                    response = _fault_response(fault)
    finally:
        sb.calls.end(appid)
    if fault is not None:
        response.fault = fault.kind

    sb.calls.record(
        at=started,
        method=req.method,
        path=req.path,
        raw_query=req.raw_query,
        body=req.body,
        authorizer_appid=appid,
        errcode=response.errcode,
        http_status=response.status,
        fault=response.fault,
        duration_ms=round((time.time() - started) * 1000, 1),
    )
    return response


def _run(sb: Sandbox, req: Request, route: Handler | None) -> Response:
    if route is None:
        return wechat_error(40066, req.path)
    try:
        result = route(sb, req)
    except WeChatError as exc:
        return wechat_error(exc.errcode, exc.detail)
    except Exception:  # a sandbox bug must not pass for a WeChat answer: say so with a 500
        traceback.print_exc(file=sys.stderr)
        response = json_response({"error": "sandbox internal error; see its stderr"}, status=500)
        response.errcode = None
        return response
    return result if isinstance(result, Response) else json_response(result)


def _fault_response(fault: Fault) -> Response:
    if fault.errcode is not None:
        return wechat_error(fault.errcode)
    if fault.http_status is not None:
        body = f"<html><body><h1>{fault.http_status}</h1>injected by the WeChat sandbox</body></html>".encode()
        return Response(status=fault.http_status, body=body, content_type="text/html")
    if fault.garbage == "truncated":
        return Response(body=b'{"errcode":0,"errm', errcode=None)
    body, content_type = _GARBAGE_BODIES[fault.garbage or "text"]
    return Response(body=body, content_type=content_type, errcode=None)
