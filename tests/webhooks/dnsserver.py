"""Name servers on 127.0.0.1 for the webhook URL checks: one that answers from a table, one that never does.

The product resolves webhook hosts with dnspython through ``WEBHOOK_DNS_SERVERS``; pointing that
setting here makes the tests independent of the machine's resolver, and the blackhole is a name
server that swallows every query (what an attacker's slow name server looks like from our side).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class NameServer:
    sock: socket.socket
    records: dict[str, list[str]] = field(default_factory=dict)  # name → addresses (v4 and v6)
    queries: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.queries.append(f"{name} {dns.rdatatype.to_text(question.rdtype)}")
            if name not in self.records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                wanted = "AAAA" if question.rdtype == dns.rdatatype.AAAA else "A"
                addresses = [a for a in self.records[name] if (":" in a) == (wanted == "AAAA")]
                if addresses:
                    response.answer.append(dns.rrset.from_text(question.name, 60, "IN", wanted, *addresses))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def start_name_server(records: dict[str, list[str]] | None = None) -> NameServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    server = NameServer(sock, dict(records or {}))
    threading.Thread(target=server.serve, daemon=True).start()
    return server


def start_blackhole() -> socket.socket:
    """A bound UDP socket nobody reads: every query to it goes unanswered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock
