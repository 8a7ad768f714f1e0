"""One running sandbox: its configuration, state, call log, faults, pushes and HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .calllog import CallLog
from .faults import FaultBook
from .push import Pusher, TicketLoop
from .seed import (
    DEMO_COMPONENT_AES_KEY,
    DEMO_COMPONENT_APPID,
    DEMO_COMPONENT_APPSECRET,
    DEMO_COMPONENT_TOKEN,
    seed_demo_accounts,
)
from .state import DEFAULT_MINUTE_LIMIT, Authorization, Behaviour, State

if TYPE_CHECKING:
    from .server import SandboxHTTPServer


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0
    component_appid: str = DEMO_COMPONENT_APPID
    component_appsecret: str = DEMO_COMPONENT_APPSECRET
    component_token: str = DEMO_COMPONENT_TOKEN
    component_aes_key: str = DEMO_COMPONENT_AES_KEY
    push_url: str | None = None
    ticket_interval: float = 600.0
    # Seconds before the first ticket push: how a slow WeChat (or a loaded machine) looks to the platform.
    first_push_delay: float = 0.0
    token_ttl: int = 7200
    seed: bool = True
    quiet: bool = False
    push_retry_delay: float = 1.0
    push_timeout: float = 5.0
    call_log_capacity: int = 200_000
    # The platform's registered "授权发起页域名": WeChat's authorization page is refused to a browser
    # whose Referer is not on it. A host ("kf.example.com", compared by host name) or host:port or
    # URL (compared by host and port). None: the push URL's host:port; with no push URL either,
    # any Referer is accepted, but a request with none is still refused, as WeChat does.
    authorization_domain: str | None = None
    # How strictly WeChat is imitated (state.Behaviour); the defaults are WeChat's.
    rotate_refresh_tokens: bool = True
    redirect_query: str = "escape"
    check_redirect_domain: bool = True
    minute_limit: int = DEFAULT_MINUTE_LIMIT

    def behaviour(self) -> Behaviour:
        return Behaviour(
            rotate_refresh_tokens=self.rotate_refresh_tokens,
            redirect_query=self.redirect_query,
            check_redirect_domain=self.check_redirect_domain,
            minute_limit=self.minute_limit,
        )

    def registered_domain(self) -> str | None:
        from urllib.parse import urlsplit

        value = self.authorization_domain or (self.push_url or None)
        if not value:
            return None
        return urlsplit(value).netloc if "://" in value else value.strip().rstrip("/")


class Sandbox:
    def __init__(self, config: SandboxConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.url = ""
        self.state = self._new_state(seed=config.seed)
        self.calls = CallLog(config.call_log_capacity)
        self.faults = FaultBook()
        self.pusher = Pusher(
            component_appid=config.component_appid,
            component_token=config.component_token,
            component_aes_key=config.component_aes_key,
            push_url=config.push_url,
            retry_delay=config.push_retry_delay,
            timeout=config.push_timeout,
            clock=clock,
            quiet=config.quiet,
        )
        self.ticket_loop: TicketLoop | None = None
        self.server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _new_state(self, *, seed: bool) -> State:
        state = State(
            component_appid=self.config.component_appid,
            component_appsecret=self.config.component_appsecret,
            token_ttl=self.config.token_ttl,
            clock=self.clock,
            behaviour=self.config.behaviour(),
        )
        state.public_base = self.url
        if seed:
            seed_demo_accounts(state)
        return state

    # ---------------------------------------------------------------- what several entry points share

    def authorize(
        self, *, appid: str, func: Iterable[int], pre_auth_code: str | None, wait_push: bool = False
    ) -> tuple[Authorization, bool | None]:
        """The user's confirmation: new codes and refresh token, then the event push (if any)."""
        auth = self.state.authorize(appid=appid, func=func, pre_auth_code=pre_auth_code)
        delivered: bool | None = None
        if auth.info_type is not None:
            xml = self.pusher.authorization_xml(auth)
            if wait_push:
                delivered = self.pusher.deliver(xml, info_type=auth.info_type, authorizer_appid=appid)
            else:
                self.pusher.in_background(xml, info_type=auth.info_type, authorizer_appid=appid)
        return auth, delivered

    def unauthorize(self, appid: str, *, wait_push: bool = False) -> tuple[bool, bool | None]:
        was_authorized = self.state.revoke(appid)
        delivered: bool | None = None
        if was_authorized:
            xml = self.pusher.unauthorized_xml(appid)
            if wait_push:
                delivered = self.pusher.deliver(xml, info_type="unauthorized", authorizer_appid=appid)
            else:
                self.pusher.in_background(xml, info_type="unauthorized", authorizer_appid=appid)
        return was_authorized, delivered

    def push_ticket(self) -> tuple[str, bool]:
        return self.pusher.push_ticket(self.state)

    def push_ticket_in_background(self) -> None:
        threading.Thread(target=self.push_ticket, name="push-ticket", daemon=True).start()

    def reset(self, *, seed: bool) -> None:
        self.state = self._new_state(seed=seed)
        self.calls.clear()
        self.faults.clear()
        self.faults.clear_latency()
        self.faults.clear_chaos()
        self.pusher.clear()

    # ---------------------------------------------------------------- serving

    def bind(self) -> str:
        from .server import SandboxHTTPServer

        server = SandboxHTTPServer((self.config.host, self.config.port), self)
        self.server = server
        host, port = server.server_address[:2]
        assert isinstance(host, str), "an AF_INET server binds a text host"
        self.url = f"http://{host}:{port}"
        self.state.public_base = self.url
        return self.url

    def serve_forever(self) -> None:
        assert self.server is not None, "bind() first"
        if self.config.push_url:
            self.ticket_loop = TicketLoop(
                pusher=self.pusher,
                state_ref=lambda: self.state,
                interval=self.config.ticket_interval,
                first_delay=self.config.first_push_delay,
            )
            self.ticket_loop.start()
        self.server.serve_forever(poll_interval=0.05)

    def start_in_thread(self) -> str:
        """Binds and serves from a daemon thread: how tests run the sandbox in-process."""
        url = self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="wechat-sandbox", daemon=True)
        self._thread.start()
        return url

    def shutdown(self) -> None:
        if self.ticket_loop is not None:
            self.ticket_loop.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
