"""Encrypted pushes to the platform's authorization-event URL, as WeChat sends them (docs/wechat.md §2, §7, §8).

POST {push_url}?signature=…&timestamp=…&nonce=…&encrypt_type=aes&msg_signature=…
body <xml><AppId>component appid</AppId><Encrypt>…</Encrypt></xml>, Content-Type text/xml.
A push counts as delivered only when the answer is exactly `success`; otherwise WeChat tries again
(three more times here).
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import requests

from .state import Authorization, State

RETRIES = 3
_LOG_CAPACITY = 2000


def event_xml(fields: list[tuple[str, str | int]]) -> bytes:
    parts = ["<xml>"]
    for name, value in fields:
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode()


class Pusher:
    def __init__(
        self,
        *,
        component_appid: str,
        component_token: str,
        component_aes_key: str,
        push_url: str | None,
        retry_delay: float = 1.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        quiet: bool = False,
    ) -> None:
        self.component_appid = component_appid
        self.component_token = component_token
        self.push_url = push_url
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.clock = clock
        self.quiet = quiet
        self._crypt: Any = None
        self._aes_key = component_aes_key
        self._lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=_LOG_CAPACITY)
        self._seq = 0
        self._last_complaint = 0.0

    def _crypto(self) -> Any:
        if self._crypt is None:
            # Imported late: the sandbox serves APIs without pushes even where crypto is unavailable.
            from wechat.crypto import WXBizMsgCrypt

            self._crypt = WXBizMsgCrypt(
                token=self.component_token, encoding_aes_key=self._aes_key, appid=self.component_appid
            )
        return self._crypt

    # ---------------------------------------------------------------- what gets pushed

    def ticket_xml(self, ticket: str) -> bytes:
        return event_xml(
            [
                ("AppId", self.component_appid),
                ("CreateTime", int(self.clock())),
                ("InfoType", "component_verify_ticket"),
                ("ComponentVerifyTicket", ticket),
            ]
        )

    def authorization_xml(self, auth: Authorization) -> bytes:
        assert auth.info_type is not None
        return event_xml(
            [
                ("AppId", self.component_appid),
                ("CreateTime", auth.create_time),
                ("InfoType", auth.info_type),
                ("AuthorizerAppid", auth.appid),
                ("AuthorizationCode", auth.auth_code),
                # Absolute unix time, as every SDK sample has it (docs/wechat.md §7).
                ("AuthorizationCodeExpiredTime", auth.expires_at),
                ("PreAuthCode", auth.pre_auth_code),
            ]
        )

    def unauthorized_xml(self, appid: str) -> bytes:
        return event_xml(
            [
                ("AppId", self.component_appid),
                ("CreateTime", int(self.clock())),
                ("InfoType", "unauthorized"),
                ("AuthorizerAppid", appid),
            ]
        )

    # ---------------------------------------------------------------- delivery

    def deliver(
        self, plaintext: bytes, *, info_type: str, authorizer_appid: str | None = None, retries: int = RETRIES
    ) -> bool:
        """Pushes one message, retrying while the answer is not exactly `success`."""
        entry: dict[str, Any] = {
            "at": self.clock(),
            "info_type": info_type,
            "authorizer_appid": authorizer_appid,
            "plaintext": plaintext.decode(),
            "delivered": False,
            "attempts": [],
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)
        if not self.push_url:
            self._note(entry, {"at": self.clock(), "error": "no push URL configured"}, delivered=False)
            return False
        crypt = self._crypto()
        encrypt = crypt.encrypt(plaintext)
        from wechat.crypto import push_envelope

        body = push_envelope(appid=self.component_appid, encrypt=encrypt)
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(self.retry_delay)
            timestamp = str(int(self.clock()))
            nonce = str(random.randint(100_000_000, 9_999_999_999))
            params = {
                "signature": hashlib.sha1(
                    "".join(sorted([self.component_token, timestamp, nonce])).encode()
                ).hexdigest(),
                "timestamp": timestamp,
                "nonce": nonce,
                "encrypt_type": "aes",
                "msg_signature": crypt.sign(timestamp, nonce, encrypt),
            }
            record: dict[str, Any] = {"at": self.clock()}
            try:
                with requests.Session() as session:
                    session.trust_env = False  # never through a proxy: the platform is on loopback
                    response = session.post(
                        self.push_url,
                        params=params,
                        data=body,
                        headers={"Content-Type": "text/xml"},
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                record["status"] = response.status_code
                record["answer"] = response.text[:200]
                ok = response.status_code == 200 and response.text == "success"
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"[:300]
                ok = False
            self._note(entry, record, delivered=ok)
            if ok:
                return True
            self._complain(info_type, record)
        return False

    def _complain(self, info_type: str, record: dict[str, Any]) -> None:
        # One line every 30 s at most: a platform that is not up yet would otherwise flood stderr.
        now = time.monotonic()
        if self.quiet or now - self._last_complaint < 30:
            return
        self._last_complaint = now
        what = record.get("error") or f"HTTP {record.get('status')} {record.get('answer', '')[:60]!r}"
        print(f"sandbox: push {info_type} to {self.push_url} not accepted: {what}", file=sys.stderr, flush=True)

    def in_background(self, plaintext: bytes, *, info_type: str, authorizer_appid: str | None = None) -> None:
        threading.Thread(
            target=self.deliver,
            args=(plaintext,),
            kwargs={"info_type": info_type, "authorizer_appid": authorizer_appid},
            name=f"push-{info_type}",
            daemon=True,
        ).start()

    def push_ticket(self, state: State, *, retries: int = RETRIES) -> tuple[str, bool]:
        ticket = state.issue_ticket()
        return ticket, self.deliver(self.ticket_xml(ticket), info_type="component_verify_ticket", retries=retries)

    def _note(self, entry: dict[str, Any], attempt: dict[str, Any], *, delivered: bool) -> None:
        with self._lock:
            entry["attempts"].append(attempt)
            entry["delivered"] = delivered

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [{**e, "attempts": list(e["attempts"])} for e in self._log if e["seq"] > since]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


class TicketLoop(threading.Thread):
    """Pushes a ticket at start (after `first_delay`) and then every `interval` seconds, like WeChat's
    10-minute cycle.

    Until the platform answers `success` the same ticket is offered again every second, so a
    platform that starts after the sandbox gets its first ticket within a second of coming up.
    """

    def __init__(
        self, *, pusher: Pusher, state_ref: Callable[[], State], interval: float, first_delay: float = 0.0
    ) -> None:
        super().__init__(name="ticket-loop", daemon=True)
        self.pusher = pusher
        self.state_ref = state_ref
        self.interval = interval
        self.first_delay = first_delay
        self.stopped = threading.Event()

    def run(self) -> None:
        if self.stopped.wait(self.first_delay):
            return
        while not self.stopped.is_set():
            ticket = self.state_ref().issue_ticket()
            plaintext = self.pusher.ticket_xml(ticket)
            while not self.pusher.deliver(plaintext, info_type="component_verify_ticket", retries=0):
                if self.stopped.wait(1.0):
                    return
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
