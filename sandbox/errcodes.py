"""WeChat's error codes as the sandbox answers them: HTTP 200, JSON, an errmsg ending with a rid."""

from __future__ import annotations

import random

ERRMSG: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40014: "invalid access_token",
    40066: "invalid url",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43002: "require POST method",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    48006: "forbid to clear quota because of reaching the limit",
    61003: "component is not authorized by this account",
    61005: "component ticket is expired",
    61006: "component ticket is invalid",
    61007: "api is unauthorized to component",
    61009: "code is invalid",
    61010: "code is expired",
    61011: "invalid component",
    61023: "refresh_token is invalid",
    65400: "please enable new custom service, or wait for a while if you have enabled",
    65401: "invalid custom service account",
    65403: "illegal nickname",
    65404: "illegal custom service account",
    65405: "custom service account number reach limit",
    65406: "custom service account exists",
}


class WeChatError(Exception):
    """Raised by the simulated APIs; turned into WeChat's JSON error body by the server."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(errcode, detail)
        self.errcode = errcode
        self.detail = detail


def rid() -> str:
    # WeChat appends a request id like "rid: 6512a3f0-4c1d2e3f-0a1b2c3d" to every error message.
    return "-".join(f"{random.getrandbits(32):08x}" for _ in range(3))


def error_body(errcode: int, detail: str = "") -> dict[str, object]:
    message = ERRMSG.get(errcode, "system error")
    if detail:
        message = f"{message} {detail}"
    return {"errcode": errcode, "errmsg": f"{message} rid: {rid()}"}


OK: dict[str, object] = {"errcode": 0, "errmsg": "ok"}
