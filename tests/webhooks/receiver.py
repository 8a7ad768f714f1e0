"""A small webhook receiver on 127.0.0.1: records what it got, answers with the statuses it is told."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what this receiver answered


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    # Status codes to answer, in order; 200 once they are used up.
    answers: list[int] = field(default_factory=list)
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kf"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver = holder["r"]
            with lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.received.append(Received(self.path, {k: v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            if receiver.redirect_to and 300 <= status < 400:
                self.send_header("Location", receiver.redirect_to)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["r"]


@dataclass
class DripReceiver:
    """A receiver that answers ``HTTP/1.1 200 OK`` and then one header byte every ``every`` seconds,
    for ever: each read succeeds within any read timeout, only an overall deadline ends it."""

    sock: socket.socket
    every: float
    open_now: int = 0  # connections being dripped to at this moment
    served: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/drip"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with self._lock:
            self.open_now += 1
            self.served += 1
            self.peak = max(self.peak, self.open_now)
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            conn.settimeout(self.every)
            while not self._stop.is_set():
                try:
                    if conn.recv(1) == b"":
                        break  # the client closed the connection (its deadline): counted at once
                except TimeoutError:
                    conn.sendall(b"X")
        except OSError:
            pass  # the client gave up: what the deadline is for
        finally:
            conn.close()
            with self._lock:
                self.open_now -= 1

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def start_drip_receiver(every: float) -> DripReceiver:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    receiver = DripReceiver(sock, every)
    threading.Thread(target=receiver._serve, daemon=True).start()
    return receiver
