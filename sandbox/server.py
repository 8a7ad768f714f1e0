"""The HTTP server: standard library only, one daemon thread per connection, HTTP/1.1 keep-alive."""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from . import api, control
from .wire import Request, Response, json_response

if TYPE_CHECKING:
    from .app import Sandbox

_MAX_BODY = 10 * 1024 * 1024


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, SandboxRequestHandler)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WeChatSandbox/1.0"
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive client
    # waits ~40 ms for the delayed ACK on every call.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        req = Request(
            method=self.command,
            path=split.path,
            query_multi=parse_qs(split.query, keep_blank_values=True),
            body=body,
            raw_query=split.query,
            content_type=self.headers.get("Content-Type", ""),
            referer=self.headers.get("Referer", ""),
        )
        sandbox = self.server.sandbox
        if req.path == "/sandbox" or req.path.startswith("/sandbox/"):
            response = control.handle(sandbox, req)
        else:
            response = api.handle(sandbox, req)
        self._send(response)
        if not sandbox.config.quiet:
            outcome = f" errcode={response.errcode}" if response.errcode not in (None, 0) else ""
            fault = f" fault={response.fault}" if response.fault else ""
            sys.stderr.write(
                f"sandbox {time.strftime('%H:%M:%S')} {req.method} {req.path} {response.status}{outcome}{fault}"
                f" {(time.monotonic() - started) * 1000:.0f}ms\n"
            )

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(json_response({"error": "body too large"}, status=413))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its read timeout fired during an injected timeout).
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # _dispatch writes one line per request itself
