"""The one place that sends HTTP to merchants' receivers.

It connects to an address `urlguard.resolve` has just checked (never re-resolving the name), keeps
TLS verification on the URL's host name (SNI and certificate check), follows no redirects, bounds
the size of what it reads, and never raises: the outcome is a value.

Time is bounded twice. The connect and read timeouts bound each socket operation; the **deadline**
bounds the whole exchange (connect, TLS handshake, request, status line, headers, body), because a
receiver that drips one byte just inside the read timeout would otherwise hold a worker thread for
ever. A timer shuts the connection's socket down when the deadline passes, which ends any blocking
read or handshake at once; the delivery's lease is longer than the deadline (services.py).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import certifi
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError

from webhooks.urlguard import Target

MAX_RESPONSE_BYTES = 4096
USER_AGENT = "kfplatform-webhooks/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Deadline:
    """Shuts the watched socket down when the time is up (from a timer thread)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._watched: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor: TLS wrapping detaches the original socket object, but a
        # shutdown on any descriptor of the connection ends it for every reader.
        with self._lock:
            self._watched = sock.dup()
            if self.expired:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._watched is not None:
            try:
                self._watched.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._watched is not None:
                self._watched.close()
                self._watched = None


class _WatchedHTTPConnection(HTTPConnection):
    deadline: _Deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.deadline.watch(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    deadline: _Deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.deadline.watch(sock)
        return sock


def post(
    target: Target,
    address: str,
    *,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    ca_certs: str | None = None,
) -> Outcome:
    started = time.monotonic()
    watchdog = _Deadline(deadline)
    connect_timeout = min(connect_timeout, deadline)
    conn: HTTPConnection
    if target.scheme == "https":
        conn = _WatchedHTTPSConnection(
            address,
            target.port,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        conn = _WatchedHTTPConnection(address, target.port, timeout=connect_timeout)
    conn.deadline = watchdog
    all_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
    }
    status: int | None = None
    error = ""
    watchdog.start()
    try:
        conn.connect()
        conn.timeout = read_timeout  # each later socket operation; the deadline bounds them all
        conn.request("POST", target.path, body=body, headers=all_headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)  # enough to let the receiver finish; the rest is dropped
        status = response.status
        if 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
    except (HTTPError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        watchdog.cancel()
        conn.close()
    if watchdog.expired and status is None:
        error = f"no complete answer within the {deadline:g} s deadline"
    elif watchdog.expired:
        status, error = None, f"the answer did not finish within the {deadline:g} s deadline"
    return Outcome(status_code=status, error=error[:255], duration_ms=int((time.monotonic() - started) * 1000))
