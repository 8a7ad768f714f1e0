"""The request and response shapes the sandbox's handlers exchange with the HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .errcodes import WeChatError, error_body

JSON_TYPE = "application/json; encoding=utf-8"  # what api.weixin.qq.com sends
_UNPARSED = object()


@dataclass
class Request:
    method: str
    path: str
    query_multi: dict[str, list[str]]
    body: bytes
    raw_query: str = ""
    content_type: str = ""
    referer: str = ""
    _json: Any = field(default=_UNPARSED, repr=False)

    def arg(self, name: str) -> str | None:
        values = self.query_multi.get(name)
        return values[0] if values else None

    def parsed_body(self) -> Any:
        """The body as JSON when it is JSON, else None (cached: the log and the handler both need it)."""
        if self._json is _UNPARSED:
            try:
                self._json = json.loads(self.body.decode("utf-8")) if self.body.strip() else None
            except (UnicodeDecodeError, ValueError):
                self._json = None
        return self._json

    def json_object(self) -> dict[str, Any]:
        """The JSON object WeChat's POST APIs expect: 44002 when empty, 47001 when malformed."""
        if not self.body.strip():
            raise WeChatError(44002)
        data = self.parsed_body()
        if not isinstance(data, dict):
            raise WeChatError(47001)
        return data

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    errcode: int | None = None
    fault: str | None = None


def json_response(data: Any, *, status: int = 200) -> Response:
    errcode = data.get("errcode", 0) if isinstance(data, dict) else None
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status=status, body=body, errcode=errcode)


def wechat_error(errcode: int, detail: str = "") -> Response:
    return json_response(error_body(errcode, detail))


def html_response(html: str, *, status: int = 200) -> Response:
    return Response(status=status, body=html.encode(), content_type="text/html; charset=utf-8")
