"""The control API under /sandbox/: JSON in, JSON out, for tests, benchmarks and the demo.

Not WeChat: these calls are not recorded in the call log. Errors answer a 4xx status with
{"error": "..."}.

GET    /sandbox/health                      {"ok": true, "component_appid": ...}
GET    /sandbox/calls[?since=SEQ][&path=P][&limit=N]
                                            {"calls": [{seq, at, method, path, query, body, authorizer_appid,
                                             errcode, http_status, fault, duration_ms}], "last_seq"}
                                            every WeChat-API call received (the last 200k)
DELETE /sandbox/calls                       clears the call log and the stats
GET    /sandbox/stats                       {"total", "by_path", "outcomes" (path -> errcode/fault -> n),
                                             "by_appid" (appid -> path -> n), "in_flight", "peak_concurrency"}
GET    /sandbox/pushes[?since=SEQ]          {"pushes": [{seq, at, info_type, authorizer_appid, plaintext,
                                             delivered, attempts: [{at, status, answer | error}]}]}
DELETE /sandbox/pushes                      clears the push log
POST   /sandbox/faults                      {"path", "appid"?, "times"?: 1, one of "errcode": N |
                                             "http_status": 5xx | "timeout": true (+ "seconds"?: 30) |
                                             "garbage": "html"|"truncated"|"text"|"empty", "latency_ms"?,
                                             "applied"?: bool} queues a fault for the next matching calls.
                                             "applied": whether the call takes effect before the bad answer
                                             (default: true for timeout and truncated, false otherwise)
GET    /sandbox/faults                      {"faults": [...]} still queued
POST   /sandbox/chaos                       {"path", "rate": 0.15, "faults": [fault specs as above], "seed"?}
                                            from now on that share of the path's calls (not taken by a queued
                                            fault) gets one of the faults at random; GET shows it, DELETE ends it
DELETE /sandbox/faults                      clears queued faults
POST   /sandbox/latency                     {"path"?: P, "ms": N} standing latency (all paths without "path";
                                             ms 0 removes it)
GET    /sandbox/latency, DELETE /sandbox/latency
GET    /sandbox/accounts                    {"accounts": [summary]}
POST   /sandbox/accounts                    {"nick_name", "kind": "subscription"|"service"|"mini_program",
                                             "certified"?: true, "kf_enabled"?: true, "alias"?, "appid"?,
                                             "principal_name"?, "verify_type"?, "service_type"?} -> 201 summary
POST   /sandbox/accounts/bulk               {"appids": [...], "kind"?: "service", "func"?: [1, 6],
                                             "refresh_tokens"?: false} creates them all at once, each authorized
                                             with its code exchanged, no push -> 201 {"created": n,
                                             "refresh_tokens"?: {appid: token}} (the scale bench's 100,000)
GET    /sandbox/accounts/{appid}            summary
POST   /sandbox/accounts/{appid}            {"kf_enabled"?, "certified"?, "verify_type"?, "nick_name"?, ...}
GET    /sandbox/accounts/{appid}/kf         {"kf_list": [...]} as getkflist shows it
POST   /sandbox/accounts/{appid}/kf         {"kf_account", "kf_nick"?, "kf_wx"?, "invite_wx"?,
                                             "invite_expire_time"?, "invite_status"?}, or {"kf_accounts": [...]},
                                             or {"generate": N, "prefix"?: "bulk"}: seeds directly (no add rules)
POST   /sandbox/accounts/{appid}/quota      {"api": "del"|"add"|"getkflist", "daily_limit"?, "used"?,
                                             "minute_limit"?, "exhaust_minute"?: bool} (45011 for the rest of
                                             this wall-clock minute when exhaust_minute)
POST   /sandbox/accounts/{appid}/invalidate_refresh_token
                                            the refresh token the platform holds answers 61023 from now on;
                                            the current one is in api_get_authorizer_info / _list
GET    /sandbox/behaviour                   {"rotate_refresh_tokens", "redirect_query", "check_redirect_domain",
                                             "minute_limit"}: how strictly it imitates WeChat
POST   /sandbox/behaviour                   change any of them (until the next reset)
POST   /sandbox/quota/reset                 {"appid"?} zeroes today's usage
POST   /sandbox/authorize                   {"appid", "func": [1, 6], "redirect_uri"?, "pre_auth_code"?,
                                             "wait_push"?: false} does what the page's confirm does
                                             -> {"auth_code", "expires_in", "redirect", "info_type", "pre_auth_code",
                                             "delivered"}
POST   /sandbox/unauthorize                 {"appid", "wait_push"?} -> {"was_authorized", "delivered"}
POST   /sandbox/push_ticket                 -> {"ticket", "delivered"}
POST   /sandbox/expire                      {"what": "component"|"authorizer"|"ticket"|"pre_auth_code"|"auth_code",
                                             "appid"?} makes them expire now -> {"expired": n}
POST   /sandbox/reset                       {"seed"?: true} forgets everything: accounts, tokens, logs, faults
GET    /sandbox/avatar/{name}.svg           a generated avatar (head_img and kf_headimgurl point here)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .api import redirect_with_code
from .faults import fault_from_json
from .pages import avatar_svg
from .wire import Request, Response, json_response

if TYPE_CHECKING:
    from .app import Sandbox


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    try:
        data = json.loads(req.body)
    except ValueError:
        raise ControlError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "body must be a JSON object")
    return data


def _int_arg(req: Request, name: str, default: int) -> int:
    value = req.arg(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ControlError(400, f"{name} must be an integer") from None


# ---------------------------------------------------------------- handlers


def health(sb: Sandbox, req: Request) -> Any:
    return {"ok": True, "component_appid": sb.config.component_appid}


def calls_get(sb: Sandbox, req: Request) -> Any:
    calls = sb.calls.since(_int_arg(req, "since", 0), req.arg("path"), _int_arg(req, "limit", 0) or None)
    return {"calls": calls, "last_seq": sb.calls.last_seq()}


def calls_delete(sb: Sandbox, req: Request) -> Any:
    sb.calls.clear()
    return {"ok": True}


def stats(sb: Sandbox, req: Request) -> Any:
    return sb.calls.stats()


def pushes_get(sb: Sandbox, req: Request) -> Any:
    return {"pushes": sb.pusher.log(_int_arg(req, "since", 0))}


def pushes_delete(sb: Sandbox, req: Request) -> Any:
    sb.pusher.clear()
    return {"ok": True}


def faults_post(sb: Sandbox, req: Request) -> Any:
    fault = fault_from_json(_body(req))
    sb.faults.add(fault)
    return fault.describe()


def faults_get(sb: Sandbox, req: Request) -> Any:
    return {"faults": sb.faults.pending()}


def chaos_post(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    path, rate = data.get("path"), data.get("rate")
    specs = data.get("faults")
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ControlError(400, "rate must be a number from 0 to 1")
    if not isinstance(specs, list) or not specs or not all(isinstance(x, dict) for x in specs):
        raise ControlError(400, "faults must be a non-empty list of fault objects")
    faults = [fault_from_json({**spec, "path": path}) for spec in specs]
    sb.faults.set_chaos(str(path), float(rate), faults, seed=data.get("seed"))
    return {"chaos": sb.faults.chaos()}


def chaos_get(sb: Sandbox, req: Request) -> Any:
    return {"chaos": sb.faults.chaos()}


def chaos_delete(sb: Sandbox, req: Request) -> Any:
    sb.faults.clear_chaos()
    return {"chaos": {}}


def faults_delete(sb: Sandbox, req: Request) -> Any:
    sb.faults.clear()
    return {"ok": True}


def latency_post(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    ms = int(data.get("ms", 0))
    if ms < 0:
        raise ValueError("ms must not be negative")
    sb.faults.set_latency(data.get("path") or None, ms)
    return {"latency": sb.faults.latencies()}


def latency_get(sb: Sandbox, req: Request) -> Any:
    return {"latency": sb.faults.latencies()}


def latency_delete(sb: Sandbox, req: Request) -> Any:
    sb.faults.clear_latency()
    return {"latency": {}}


def accounts_get(sb: Sandbox, req: Request) -> Any:
    return {"accounts": sb.state.account_summaries()}


_ACCOUNT_FIELDS = {
    "nick_name",
    "kind",
    "certified",
    "kf_enabled",
    "alias",
    "appid",
    "principal_name",
    "user_name",
    "verify_type",
    "service_type",
}


def accounts_post(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    unknown = set(data) - _ACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    account = sb.state.create_account(**data)
    return json_response(sb.state.account_summary(account.appid), status=201)


def accounts_bulk_post(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    appids = data.get("appids")
    if not isinstance(appids, list):
        raise ControlError(400, "appids must be a list")
    func = data.get("func", [1, 6])
    if not isinstance(func, list) or not all(isinstance(f, int) for f in func):
        raise ControlError(400, "func must be a list of permission-set ids")
    tokens = sb.state.create_authorized_accounts(appids, kind=str(data.get("kind", "service")), func=func)
    answer: dict[str, Any] = {"created": len(tokens)}
    if data.get("refresh_tokens"):
        answer["refresh_tokens"] = tokens
    return json_response(answer, status=201)


def account_get(sb: Sandbox, req: Request, appid: str) -> Any:
    return sb.state.account_summary(appid)


def account_post(sb: Sandbox, req: Request, appid: str) -> Any:
    sb.state.update_account(appid, _body(req))
    return sb.state.account_summary(appid)


def account_kf_get(sb: Sandbox, req: Request, appid: str) -> Any:
    return {"kf_list": sb.state.kf_snapshot(appid)}


def account_kf_post(sb: Sandbox, req: Request, appid: str) -> Any:
    data = _body(req)
    if "generate" in data:
        count = int(data["generate"])
        prefix = str(data.get("prefix") or "bulk")
        summary = sb.state.account_summary(appid)
        suffix = summary["alias"] or appid
        start = int(data.get("start", 1))
        items = [
            {"kf_account": f"{prefix}{n}@{suffix}", "kf_nick": f"{prefix} {n}"} for n in range(start, start + count)
        ]
    elif "kf_accounts" in data:
        items = data["kf_accounts"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError("kf_accounts must be a list of objects")
    else:
        items = [data]
    created = sb.state.seed_kf(appid, items)
    now = sb.clock()
    return json_response({"created": [k.as_wechat(now) for k in created]}, status=201)


def account_quota_post(sb: Sandbox, req: Request, appid: str) -> Any:
    data = _body(req)
    daily_limit, used, minute_limit = data.get("daily_limit"), data.get("used"), data.get("minute_limit")
    sb.state.set_quota(
        appid,
        api=str(data.get("api", "del")),
        daily_limit=int(daily_limit) if daily_limit is not None else None,
        used=int(used) if used is not None else None,
        minute_limit=int(minute_limit) if minute_limit is not None else None,
        exhaust_minute=bool(data.get("exhaust_minute")),
    )
    return sb.state.account_summary(appid)


def account_refresh_token_invalidate(sb: Sandbox, req: Request, appid: str) -> Any:
    sb.state.invalidate_refresh_token(appid)
    return sb.state.account_summary(appid)


def behaviour_get(sb: Sandbox, req: Request) -> Any:
    return sb.state.behaviour.as_json()


def behaviour_post(sb: Sandbox, req: Request) -> Any:
    sb.state.behaviour.update(_body(req))
    return sb.state.behaviour.as_json()


def quota_reset(sb: Sandbox, req: Request) -> Any:
    sb.state.reset_quota(_body(req).get("appid"))
    return {"ok": True}


def authorize(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    appid = data.get("appid")
    func = data.get("func", [1, 6])
    if not isinstance(appid, str) or not appid:
        raise ValueError("appid is required")
    if not isinstance(func, list) or not func or not all(isinstance(f, int) for f in func):
        raise ValueError("func must be a non-empty list of permission-set ids")
    auth, delivered = sb.authorize(
        appid=appid, func=func, pre_auth_code=data.get("pre_auth_code"), wait_push=bool(data.get("wait_push"))
    )
    redirect_uri = data.get("redirect_uri")
    return {
        "appid": appid,
        "auth_code": auth.auth_code,
        "expires_in": auth.expires_in,
        "redirect": (
            redirect_with_code(
                redirect_uri, auth.auth_code, auth.expires_in, query_mode=sb.state.behaviour.redirect_query
            )
            if redirect_uri
            else None
        ),
        "info_type": auth.info_type,
        "pre_auth_code": auth.pre_auth_code,
        "delivered": delivered,
    }


def unauthorize(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    appid = data.get("appid")
    if not isinstance(appid, str) or not appid:
        raise ValueError("appid is required")
    was_authorized, delivered = sb.unauthorize(appid, wait_push=bool(data.get("wait_push")))
    return {"appid": appid, "was_authorized": was_authorized, "delivered": delivered}


def push_ticket(sb: Sandbox, req: Request) -> Any:
    ticket, delivered = sb.push_ticket()
    return {"ticket": ticket, "delivered": delivered}


def expire(sb: Sandbox, req: Request) -> Any:
    data = _body(req)
    return {"expired": sb.state.expire(str(data.get("what", "")), data.get("appid"))}


def reset(sb: Sandbox, req: Request) -> Any:
    sb.reset(seed=bool(_body(req).get("seed", True)))
    return {"ok": True}


def avatar(sb: Sandbox, req: Request, name: str) -> Any:
    appid = name[:18]
    account = sb.state.accounts.get(appid)
    text = account.nick_name if account else name
    body = avatar_svg(name, text).encode()
    return Response(body=body, content_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


_APPID = r"(wx[0-9a-f]{16})"
_ROUTE_TABLE: list[tuple[str, str, Callable[..., Response]]] = [
    ("GET", r"/sandbox/health", health),
    ("GET", r"/sandbox/calls", calls_get),
    ("DELETE", r"/sandbox/calls", calls_delete),
    ("GET", r"/sandbox/stats", stats),
    ("GET", r"/sandbox/pushes", pushes_get),
    ("DELETE", r"/sandbox/pushes", pushes_delete),
    ("POST", r"/sandbox/faults", faults_post),
    ("GET", r"/sandbox/faults", faults_get),
    ("DELETE", r"/sandbox/faults", faults_delete),
    ("POST", r"/sandbox/chaos", chaos_post),
    ("GET", r"/sandbox/chaos", chaos_get),
    ("DELETE", r"/sandbox/chaos", chaos_delete),
    ("POST", r"/sandbox/latency", latency_post),
    ("GET", r"/sandbox/latency", latency_get),
    ("DELETE", r"/sandbox/latency", latency_delete),
    ("GET", r"/sandbox/accounts", accounts_get),
    ("POST", r"/sandbox/accounts", accounts_post),
    ("POST", r"/sandbox/accounts/bulk", accounts_bulk_post),
    ("GET", rf"/sandbox/accounts/{_APPID}", account_get),
    ("POST", rf"/sandbox/accounts/{_APPID}", account_post),
    ("GET", rf"/sandbox/accounts/{_APPID}/kf", account_kf_get),
    ("POST", rf"/sandbox/accounts/{_APPID}/kf", account_kf_post),
    ("POST", rf"/sandbox/accounts/{_APPID}/quota", account_quota_post),
    ("POST", rf"/sandbox/accounts/{_APPID}/invalidate_refresh_token", account_refresh_token_invalidate),
    ("GET", r"/sandbox/behaviour", behaviour_get),
    ("POST", r"/sandbox/behaviour", behaviour_post),
    ("POST", r"/sandbox/quota/reset", quota_reset),
    ("POST", r"/sandbox/authorize", authorize),
    ("POST", r"/sandbox/unauthorize", unauthorize),
    ("POST", r"/sandbox/push_ticket", push_ticket),
    ("POST", r"/sandbox/expire", expire),
    ("POST", r"/sandbox/reset", reset),
    ("GET", r"/sandbox/avatar/([A-Za-z0-9_-]{1,64})\.svg", avatar),
]
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
    (method, re.compile(pattern), handler) for method, pattern, handler in _ROUTE_TABLE
]


def handle(sb: Sandbox, req: Request) -> Response:
    path = req.path.rstrip("/") or "/"
    allowed = []
    for method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if method != req.method:
            allowed.append(method)
            continue
        try:
            result = handler(sb, req, *match.groups())
        except ControlError as exc:
            return json_response({"error": exc.message}, status=exc.status)
        except LookupError as exc:  # KeyError included: an unknown account
            return json_response({"error": f"not found: {exc.args[0] if exc.args else exc}"}, status=404)
        except FileExistsError as exc:
            return json_response({"error": f"already exists: {exc}"}, status=409)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return result if isinstance(result, Response) else json_response(result)
    if allowed:
        response = json_response({"error": f"method not allowed; use {', '.join(allowed)}"}, status=405)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return json_response({"error": f"no control endpoint {req.path}"}, status=404)
